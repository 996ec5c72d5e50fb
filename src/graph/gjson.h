// GjsonPath: the subset of GJSON's path syntax (github.com/tidwall/gjson, SYNTAX.md) that KServe's
// InferenceGraph router evaluates for a step's `condition`, compiled once and evaluated over
// nlohmann::ordered_json documents. Written by hand: no C++ library speaks GJSON.
// Supported: dotted keys with `\` escapes and `*`/`?` wildcards, array indexes, `#` (length, or
// `#.rest` over every element), `#(query)` (first match) and `#(query)#` (all matches) with
// `==`, `=`, `!=`, `<`, `<=`, `>`, `>=`, `%` and `!%` (patterns with `*` and `?`), `~true` /
// `~false` truthiness, queries on the element itself (`#(=="fb")`) and nested queries.
// Not supported (rejected at Parse with the position): modifiers (`@reverse`), multipaths
// (`[a,b]`, `{a,b}`), `|` pipes, `..` JSON lines.
// A parsed path is immutable and safe to evaluate from any number of threads.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace quiver::graph {

using Json = nlohmann::ordered_json;

class GjsonPath {
 public:
  // Compiles `path`; kInvalidArgument names the 0-based position and what was expected there
  // (`friends.#(last=="Murphy"`: "position 24: unterminated query, expected ')'").
  static StatusOr<GjsonPath> Parse(std::string_view path);

  // The value the path selects, or nullopt when it selects nothing. As in GJSON, a JSON null
  // that is present exists, and `#.key` or `#(...)#` over an array yields an array (possibly
  // empty), which exists.
  std::optional<Json> Get(const Json& doc) const;
  // GJSON's Result.Exists(): what KServe's router uses for Switch and Sequence conditions.
  bool Exists(const Json& doc) const { return Get(doc).has_value(); }

  const std::string& text() const { return text_; }

  struct Node;  // one compiled path component (gjson.cc)

 private:
  GjsonPath(std::string text, std::shared_ptr<const Node> first)
      : text_(std::move(text)), first_(std::move(first)) {}
  std::string text_;
  std::shared_ptr<const Node> first_;  // null for the empty path, which selects nothing
};

// GJSON's pattern match (tidwall/match): `*` any run of characters, `?` one character, `\`
// escapes the next one. Exposed for tests.
bool GjsonPatternMatch(std::string_view text, std::string_view pattern);

}  // namespace quiver::graph
