// Text from data or a config (a question, an answer, a key, a path, a message quoting them) made
// safe to print on a terminal: control characters cannot move the cursor, ring the bell, retitle
// the window or hide what follows. One helper for every place that prints such text.
#pragma once

#include <string>
#include <string_view>

namespace hogwild {

// Control characters are shown as escapes: C0 (NUL, BEL, ESC, CR…) and DEL as \xNN (\r and, on one
// line, \n and \t as themselves), C1 (U+0080..U+009F, which some terminals obey) as \u0080..\u009f,
// and bytes that are not UTF-8 as \xNN (a lone 0x9b is a CSI on an 8-bit terminal). Valid UTF-8
// text and backslashes pass unchanged. keep_newlines: '\n' and '\t' stay (a multi-line text view);
// otherwise they are escaped too, so the text stays on one line.
std::string escape_controls(std::string_view text, bool keep_newlines = false);

}  // namespace hogwild
