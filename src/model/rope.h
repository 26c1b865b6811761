// Rotary position embedding parameters derived from a model's config: the inverse frequencies
// (with Llama-3 / YaRN / linear scaling folded in) and the attention-score factor. YaRN's
// attention factor multiplies cos and sin in Hugging Face's code, i.e. the q·k score by its
// square; we keep rotations pure (so blocks can be re-rotated any number of times, docs/design.md
// §3) and apply the factor exactly once, in the softmax scale.
#pragma once

#include <vector>

#include "model/model.h"

namespace hogwild {

std::vector<float> rope_inverse_frequencies(const ModelConfig& config);
// Multiplier for q·k / sqrt(head_dim): attention_factor² for YaRN, 1 otherwise.
double rope_score_factor(const ModelConfig& config);

}  // namespace hogwild
