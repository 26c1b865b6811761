// The plain-text transcript of a solved problem, as a person reads it: the question, the steps
// in the order they finished, each worker's unfinished step, and the finisher's forced answer.
#pragma once

#include <string>

#include "hogwild/problem.h"
#include "hogwild/settings.h"
#include "tokenizer/text_codec.h"

namespace hogwild {

// Unfinished steps end with the prompts' incomplete marker when the workers collaborated.
std::string format_transcript(const ProblemResult& result, const TextCodec& tokenizer,
                              const PromptConfig& prompts);

}  // namespace hogwild
