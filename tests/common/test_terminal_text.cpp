// escape_controls: what a terminal would obey (C0, DEL, C1, stray bytes) is shown as an escape,
// everything printable (UTF-8 included) passes unchanged. Expectations are written out by hand
// from the Unicode and ECMA-48 code charts.
#include <gtest/gtest.h>

#include <string>

#include "common/terminal_text.h"

namespace hogwild {
namespace {

using namespace std::string_literals;

TEST(EscapeControls, PrintableTextPassesUnchanged) {
  for (const std::string& text :
       {""s, "plain ASCII ~!@#$%^&*()_+{}|:\"<>?"s, "\\boxed{5} and C:\\path"s,
        "caf\xc3\xa9 \xe4\xb8\x96\xe7\x95\x8c \xf0\x9f\xa6\x99"s,  // é, 世界, 🦙
        "\xc2\xa0 no-break space, \xef\xbf\xbd replacement, \xf4\x8f\xbf\xbf U+10FFFF"s})
    EXPECT_EQ(escape_controls(text), text) << text;
}

TEST(EscapeControls, C0AndDelAreEscaped) {
  EXPECT_EQ(escape_controls("red \x1b[31mtext\x1b[0m"), "red \\x1b[31mtext\\x1b[0m");
  EXPECT_EQ(escape_controls("bell\a"), "bell\\x07");
  EXPECT_EQ(escape_controls("title \x1b]0;pwned\x07"), "title \\x1b]0;pwned\\x07");
  EXPECT_EQ(escape_controls("a\0b"s), "a\\x00b");
  EXPECT_EQ(escape_controls("over\rwrite\b\x7f"), "over\\rwrite\\x08\\x7f");
  EXPECT_EQ(escape_controls("\x01\x1f"), "\\x01\\x1f");
}

TEST(EscapeControls, NewlinesAndTabsStayOnlyInMultiLineText) {
  EXPECT_EQ(escape_controls("one\ntwo\tthree"), "one\\ntwo\\tthree");
  EXPECT_EQ(escape_controls("one\ntwo\tthree", /*keep_newlines=*/true), "one\ntwo\tthree");
  EXPECT_EQ(escape_controls("one\r\n\x1b", true), "one\\r\n\\x1b");
}

TEST(EscapeControls, C1AndBytesThatAreNotUtf8AreEscaped) {
  EXPECT_EQ(escape_controls("csi \xc2\x9b"
                            "31m"),
            "csi \\u009b31m");  // U+009B, CSI
  EXPECT_EQ(escape_controls("\xc2\x80\xc2\x85\xc2\x9f"), "\\u0080\\u0085\\u009f");
  EXPECT_EQ(escape_controls("8-bit \x9b"
                            "31m"),
            "8-bit \\x9b31m");  // a lone C1 byte
  EXPECT_EQ(escape_controls("\xff\xfe"), "\\xff\\xfe");
  EXPECT_EQ(escape_controls("\xc0\xaf"), "\\xc0\\xaf");                    // overlong '/'
  EXPECT_EQ(escape_controls("\xed\xa0\x80"), "\\xed\\xa0\\x80");           // a surrogate
  EXPECT_EQ(escape_controls("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");  // above U+10FFFF
  EXPECT_EQ(escape_controls("cut \xe4\xb8"), "cut \\xe4\\xb8");            // truncated 世
}

}  // namespace
}  // namespace hogwild
