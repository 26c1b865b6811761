// The checks of Backend's public ops (kernels/backend.h), stated once for every backend: shapes
// and dtypes that the op's definition requires. What only one backend cannot do (bf16 on the CPU,
// 32-bit sizes on CUDA, index values read from device memory) stays in that backend.
#include "kernels/backend.h"

#include <string>

#include "common/error.h"
#include "kernels/sampling_rule.h"

namespace hogwild {
namespace {

// "[rows x cols dtype]", for error messages.
std::string shape_of(const Tensor& tensor) {
  return cat("[", tensor.rows, "x", tensor.cols, " ", dtype_name(tensor.dtype), "]");
}

void check_float(const char* op, const char* what, const Tensor& tensor) {
  HOGWILD_CHECK(tensor.dtype == DType::F32 || tensor.dtype == DType::BF16, op, ": ", what,
                " must be f32 or bf16, not ", shape_of(tensor));
}

// Weight-only dtypes (kernels/tensor.h): F16 and the block formats.
bool is_storage_dtype(DType dtype) {
  return dtype != DType::F32 && dtype != DType::BF16 && dtype != DType::I32;
}

void check_indices(const char* op, const char* what, const Tensor& tensor) {
  HOGWILD_CHECK(tensor.dtype == DType::I32, op, ": ", what, " must be i32, not ", shape_of(tensor));
}

}  // namespace

// A weight: a compute dtype, or a storage dtype on a backend that reads them.
void Backend::check_weight(const char* op, const char* what, const Tensor& tensor) const {
  if (is_storage_dtype(tensor.dtype)) {
    HOGWILD_CHECK(reads_stored_weights(), op, ": ", what, " ", shape_of(tensor),
                  " is in a storage format the ", name(), " backend does not read");
    HOGWILD_CHECK(tensor.contiguous(), op, ": ", what, " ", shape_of(tensor),
                  " in a storage format must be contiguous");
    return;
  }
  check_float(op, what, tensor);
}

// ---- capabilities
const char* backend_op_name(BackendOp op) {
  switch (op) {
    case BackendOp::Embedding:
      return "embedding";
    case BackendOp::RmsNorm:
      return "rms_norm";
    case BackendOp::HeadRmsNorm:
      return "head_rms_norm";
    case BackendOp::Matmul:
      return "matmul";
    case BackendOp::Rope:
      return "rope";
    case BackendOp::Swiglu:
      return "swiglu";
    case BackendOp::Add:
      return "add";
    case BackendOp::ScatterRows:
      return "scatter_rows";
    case BackendOp::GatherRows:
      return "gather_rows";
    case BackendOp::BlockAttention:
      return "block_attention";
  }
  return "unknown op";
}

bool Backend::supports(BackendOp /*op*/, DType dtype) const { return dtype == DType::F32; }

Tensor Backend::allocate(int64_t rows, int64_t cols, DType dtype) {
  HOGWILD_CHECK(rows >= 0 && cols >= 0, "cannot allocate a ", rows, "x", cols, " tensor");
  return do_allocate(rows, cols, dtype);
}

void Backend::release(Tensor& tensor) {
  if (tensor.empty()) return;
  do_release(tensor);
  tensor = Tensor{};
}

void Backend::upload_f32(const Tensor& dst, const float* host) {
  check_float("upload_f32", "the destination", dst);
  do_upload_f32(dst, host);
}

void Backend::upload_i32(const Tensor& dst, const int32_t* host) {
  check_indices("upload_i32", "the destination", dst);
  do_upload_i32(dst, host);
}

void Backend::download_f32(const Tensor& src, float* host) {
  check_float("download_f32", "the source", src);
  do_download_f32(src, host);
}

void Backend::upload_stored(const Tensor& dst, const void* host) {
  HOGWILD_CHECK(is_storage_dtype(dst.dtype) && dst.contiguous(), "upload_stored: the destination ",
                shape_of(dst), " must be a contiguous tensor in a storage format");
  HOGWILD_CHECK(reads_stored_weights(), "upload_stored: the ", name(),
                " backend does not keep weights in storage formats");
  do_upload_stored(dst, host);
}

void Backend::do_upload_stored(const Tensor& dst, const void*) {
  fail("upload_stored: the ", name(), " backend cannot hold ", shape_of(dst));
}

// ---- step graphs: backends without graphs run the step as it is recorded.
void Backend::run_step(uint64_t key, const std::function<void()>& record) {
  HOGWILD_CHECK(record != nullptr, "run_step: no step to run for graph key ", key);
  do_run_step(key, record);
}

void Backend::do_run_step(uint64_t, const std::function<void()>& record) { record(); }

void Backend::embedding(const Tensor& table, const Tensor& ids, const Tensor& out) {
  check_weight("embedding", "the table", table);
  check_indices("embedding", "the ids", ids);
  check_float("embedding", "the output", out);
  HOGWILD_CHECK(ids.rows == out.rows && table.cols == out.cols, "embedding: ids ", shape_of(ids),
                " of table ", shape_of(table), " do not fit the output ", shape_of(out));
  do_embedding(table, ids, out);
}

void Backend::rms_norm(const Tensor& x, const Tensor& weight, float eps, const Tensor& out) {
  check_float("rms_norm", "the input", x);
  check_float("rms_norm", "the weight", weight);
  check_float("rms_norm", "the output", out);
  HOGWILD_CHECK(x.rows == out.rows && x.cols == out.cols && weight.elements() == x.cols,
                "rms_norm: input ", shape_of(x), ", weight ", shape_of(weight), " and output ",
                shape_of(out), " do not match");
  do_rms_norm(x, weight, eps, out);
}

void Backend::head_rms_norm(const Tensor& x, const Tensor& weight, float eps) {
  check_float("head_rms_norm", "the input", x);
  check_float("head_rms_norm", "the weight", weight);
  const int64_t head_dim = weight.elements();
  HOGWILD_CHECK(head_dim > 0 && x.cols % head_dim == 0, "head_rms_norm: input ", shape_of(x),
                " is not a whole number of heads of the weight ", shape_of(weight));
  do_head_rms_norm(x, weight, eps);
}

void Backend::matmul(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& out) {
  check_float("matmul", "the input", x);
  check_weight("matmul", "the weight", weight);
  check_float("matmul", "the output", out);
  HOGWILD_CHECK(x.cols == weight.cols && out.rows == x.rows && out.cols == weight.rows,
                "matmul: input ", shape_of(x), " times weight ", shape_of(weight),
                " transposed does not fit the output ", shape_of(out));
  if (!bias.empty()) {
    check_float("matmul", "the bias", bias);
    HOGWILD_CHECK(bias.elements() == out.cols, "matmul: bias ", shape_of(bias),
                  " does not fit the output ", shape_of(out));
  }
  do_matmul(x, weight, bias, out);
}

void Backend::rope(const Tensor& x, const Tensor& positions, const Tensor& inv_freq,
                   int64_t head_dim) {
  check_float("rope", "the input", x);
  check_indices("rope", "the positions", positions);
  HOGWILD_CHECK(inv_freq.dtype == DType::F32, "rope: the frequencies must be f32, not ",
                shape_of(inv_freq));
  HOGWILD_CHECK(head_dim > 0 && head_dim % 2 == 0 && x.cols % head_dim == 0, "rope: input ",
                shape_of(x), " is not a whole number of heads of even size ", head_dim);
  HOGWILD_CHECK(positions.rows == x.rows && inv_freq.elements() == head_dim / 2, "rope: input ",
                shape_of(x), " needs one position per row and head_dim/2 = ", head_dim / 2,
                " frequencies (positions ", shape_of(positions), ", frequencies ",
                shape_of(inv_freq), ")");
  do_rope(x, positions, inv_freq, head_dim);
}

void Backend::swiglu(const Tensor& gate_up, const Tensor& out) {
  check_float("swiglu", "the input", gate_up);
  check_float("swiglu", "the output", out);
  HOGWILD_CHECK(gate_up.cols == 2 * out.cols && gate_up.rows == out.rows, "swiglu: input ",
                shape_of(gate_up), " is not [gate | up] of the output ", shape_of(out));
  do_swiglu(gate_up, out);
}

void Backend::add(const Tensor& x, const Tensor& y) {
  check_float("add", "x", x);
  check_float("add", "y", y);
  HOGWILD_CHECK(x.rows == y.rows && x.cols == y.cols, "add: x ", shape_of(x), " and y ",
                shape_of(y), " differ in shape");
  do_add(x, y);
}

void Backend::scatter_rows(const Tensor& src, const Tensor& rows, const Tensor& dst) {
  check_indices("scatter_rows", "the row indices", rows);
  HOGWILD_CHECK(src.dtype == dst.dtype && src.cols == dst.cols && rows.rows == src.rows,
                "scatter_rows: source ", shape_of(src), " with row indices ", shape_of(rows),
                " does not fit the destination ", shape_of(dst));
  do_scatter_rows(src, rows, dst);
}

void Backend::gather_rows(const Tensor& src, const Tensor& rows, const Tensor& out) {
  check_indices("gather_rows", "the row indices", rows);
  HOGWILD_CHECK(src.dtype == out.dtype && src.cols == out.cols && rows.rows == out.rows,
                "gather_rows: source ", shape_of(src), " with row indices ", shape_of(rows),
                " does not fit the output ", shape_of(out));
  do_gather_rows(src, rows, out);
}

void Backend::block_attention(const Tensor& q, const Tensor& keys, const Tensor& values,
                              const Tensor& page_table, int64_t page_size,
                              const Tensor& view_offsets, const Tensor& view_entries,
                              const Tensor& inv_freq, const AttentionShape& shape,
                              const Tensor& out) {
  const char* op = "block_attention";
  const int64_t heads = shape.heads, kv_heads = shape.kv_heads, d = shape.head_dim;
  HOGWILD_CHECK(kv_heads > 0 && heads % kv_heads == 0, op, ": ", heads,
                " query heads are not a multiple of ", kv_heads, " kv heads");
  HOGWILD_CHECK(d > 0 && d % 2 == 0, op, ": head dim ", d, " is not positive and even");
  HOGWILD_CHECK(page_size > 0, op, ": page size ", page_size, " is not positive");
  check_float(op, "q", q);
  check_float(op, "the output", out);
  check_float(op, "the keys", keys);
  HOGWILD_CHECK(keys.dtype == values.dtype, op, ": keys ", shape_of(keys), " and values ",
                shape_of(values), " differ in dtype");
  check_indices(op, "the page table", page_table);
  check_indices(op, "the view offsets", view_offsets);
  check_indices(op, "the view entries", view_entries);
  HOGWILD_CHECK(inv_freq.dtype == DType::F32 && inv_freq.elements() == d / 2, op,
                ": the frequencies ", shape_of(inv_freq), " are not head_dim/2 = ", d / 2,
                " f32 values");
  HOGWILD_CHECK(q.cols == heads * d && out.rows == q.rows && out.cols == q.cols, op, ": q ",
                shape_of(q), " and output ", shape_of(out), " are not [rows, ", heads, " heads x ",
                d, "]");
  HOGWILD_CHECK(keys.cols == kv_heads * d && values.cols == keys.cols && values.rows == keys.rows,
                op, ": keys ", shape_of(keys), " and values ", shape_of(values),
                " are not one pool of [rows, ", kv_heads, " kv heads x ", d, "]");
  HOGWILD_CHECK(view_offsets.rows == q.rows + 1 && view_entries.cols == 3, op, ": ", q.rows,
                " rows need ", q.rows + 1, " view offsets and entries of 3 columns (offsets ",
                shape_of(view_offsets), ", entries ", shape_of(view_entries), ")");
  do_block_attention(q, keys, values, page_table, page_size, view_offsets, view_entries, inv_freq,
                     shape, out);
}

// ---- sampling (issue 13 item 4)
void Backend::sample_tokens(const Tensor& logits, const Tensor& params, const Tensor& suppressed,
                            const Tensor& tokens, const Tensor& logprobs) {
  const char* op = "sample_tokens";
  HOGWILD_CHECK(logits.dtype == DType::F32, op, ": the logits must be f32, not ", shape_of(logits));
  HOGWILD_CHECK(logits.cols > 0 && logits.cols < sampling::kMaxVocab, op, ": the logits ",
                shape_of(logits), " need a vocabulary in [1, ", sampling::kMaxVocab, ")");
  check_indices(op, "the parameters", params);
  HOGWILD_CHECK(params.rows == logits.rows && params.cols == sampling::kRowWords, op,
                ": the parameters ", shape_of(params), " are not one row of ", sampling::kRowWords,
                " words per logits row of ", shape_of(logits));
  if (!suppressed.empty()) {
    check_indices(op, "the suppressed mask", suppressed);
    HOGWILD_CHECK(
        (suppressed.rows == 1 || suppressed.rows == logits.rows) && suppressed.cols == logits.cols,
        op, ": the suppressed mask ", shape_of(suppressed),
        " is not one row (or one per row) of the logits ", shape_of(logits));
  }
  check_indices(op, "the tokens", tokens);
  HOGWILD_CHECK(tokens.rows == logits.rows && tokens.cols == 1, op, ": the tokens ",
                shape_of(tokens), " are not one per row of the logits ", shape_of(logits));
  if (!logprobs.empty())
    HOGWILD_CHECK(
        logprobs.dtype == DType::F32 && logprobs.rows == logits.rows && logprobs.cols == 1, op,
        ": the logprobs ", shape_of(logprobs), " are not one f32 per row of ", shape_of(logits));
  if (logits.rows == 0) return;
  do_sample_tokens(logits, params, suppressed, tokens, logprobs);
}

void Backend::download_i32(const Tensor& src, int32_t* host) {
  check_indices("download_i32", "the source", src);
  do_download_i32(src, host);
}
// ---- end of sampling

}  // namespace hogwild
