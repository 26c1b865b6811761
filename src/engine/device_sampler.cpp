#include "engine/device_sampler.h"

#include <algorithm>
#include <limits>

#include "common/error.h"

namespace hogwild {

sampling::RowParams device_row_params(const SamplingParams& params, uint64_t counter) {
  params.validate();
  sampling::RowParams row;
  // Greedy exactly where the host Sampler is (a double threshold): temperature 0 on the device.
  row.temperature =
      params.temperature < kGreedyBelowTemperature
          ? 0.0f
          : std::max(static_cast<float>(params.temperature), sampling::kGreedyBelowTemperature);
  row.top_k =
      static_cast<int32_t>(std::min<int64_t>(params.top_k, std::numeric_limits<int32_t>::max()));
  row.top_p = static_cast<float>(params.top_p);
  row.min_p = static_cast<float>(params.min_p);
  row.seed = params.seed;
  row.counter = counter;
  return row;
}

DeviceSampler::DeviceSampler(Backend& backend, int64_t max_rows, int64_t vocab)
    : backend_(backend), max_rows_(max_rows), vocab_(vocab) {
  HOGWILD_CHECK(max_rows > 0 && vocab > 0, "device sampler: ", max_rows, " rows of ", vocab,
                " logits");
  try {
    params_ = backend_.allocate(max_rows, sampling::kRowWords, DType::I32);
    tokens_ = backend_.allocate(max_rows, 1, DType::I32);
    logprobs_ = backend_.allocate(max_rows, 1, DType::F32);
  } catch (...) {
    for (Tensor* t : {&params_, &tokens_, &logprobs_}) backend_.release(*t);
    throw;
  }
  packed_.resize(static_cast<size_t>(max_rows) * sampling::kRowWords);
}

DeviceSampler::~DeviceSampler() {
  for (Tensor* t : {&params_, &suppressed_, &tokens_, &logprobs_}) {
    try {
      backend_.release(*t);
    } catch (...) {  // a destructor must not throw; the backend frees all at its end anyway
    }
  }
}

void DeviceSampler::set_suppressed(std::span<const int32_t> ids) {
  has_suppressed_ = !ids.empty();
  if (!has_suppressed_) return;
  std::vector<int32_t> mask(static_cast<size_t>(vocab_), 0);
  for (const int32_t id : ids) {
    HOGWILD_CHECK(id >= 0 && id < vocab_, "suppressed token ", id, " is not in the vocabulary of ",
                  vocab_);
    mask[static_cast<size_t>(id)] = 1;
  }
  if (suppressed_.empty()) suppressed_ = backend_.allocate(1, vocab_, DType::I32);
  backend_.upload_i32(suppressed_, mask.data());
}

void DeviceSampler::sample(const Tensor& logits, std::span<const SamplingParams> params,
                           std::span<const uint64_t> counters, std::vector<int32_t>& tokens,
                           std::vector<float>* logprobs) {
  const int64_t rows = logits.rows;
  HOGWILD_CHECK(rows <= max_rows_ && logits.cols == vocab_, "device sampler: logits [", rows, "x",
                logits.cols, "] exceed its ", max_rows_, " rows of ", vocab_);
  HOGWILD_CHECK(
      static_cast<int64_t>(params.size()) == rows && static_cast<int64_t>(counters.size()) == rows,
      "device sampler: ", rows, " rows need as many parameters and counters (got ", params.size(),
      " and ", counters.size(), ")");
  for (int64_t r = 0; r < rows; ++r)
    sampling::pack_row(
        device_row_params(params[static_cast<size_t>(r)], counters[static_cast<size_t>(r)]),
        packed_.data() + r * sampling::kRowWords);
  const Tensor row_params = params_.rows_view(0, rows);
  const Tensor row_tokens = tokens_.rows_view(0, rows);
  const Tensor row_logprobs = logprobs != nullptr ? logprobs_.rows_view(0, rows) : Tensor{};
  backend_.upload_i32(row_params, packed_.data());
  backend_.sample_tokens(logits, row_params, has_suppressed_ ? suppressed_ : Tensor{}, row_tokens,
                         row_logprobs);
  tokens.resize(static_cast<size_t>(rows));
  backend_.download_i32(row_tokens, tokens.data());
  for (int64_t r = 0; r < rows; ++r)
    HOGWILD_CHECK(tokens[static_cast<size_t>(r)] >= 0, "device sampler: row ", r,
                  " has no token to sample (every logit suppressed or NaN)");
  if (logprobs != nullptr) {
    logprobs->resize(static_cast<size_t>(rows));
    backend_.download_f32(row_logprobs, logprobs->data());
  }
}

}  // namespace hogwild
