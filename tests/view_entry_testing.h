// GoogleTest support for ViewEntry: equality and a readable print, for tests that compare views.
#pragma once

#include <ostream>

#include "kernels/view_entry.h"

namespace hogwild {

// In hogwild itself, not an unnamed namespace, so that argument-dependent lookup finds them.
inline bool operator==(const ViewEntry& a, const ViewEntry& b) {
  return a.block == b.block && a.query_position == b.query_position && a.visible == b.visible;
}

inline void PrintTo(const ViewEntry& e, std::ostream* out) {
  *out << "{block " << e.block << ", query " << e.query_position << ", visible " << e.visible
       << "}";
}

}  // namespace hogwild
