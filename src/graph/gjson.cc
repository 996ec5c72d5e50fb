#include "graph/gjson.h"

#include <charconv>
#include <cstdlib>
#include <vector>

namespace quiver::graph {

namespace {

enum class Op { kNone, kEq, kNe, kLt, kLe, kGt, kGe, kLike, kNotLike };

struct Query {
  std::shared_ptr<const GjsonPath::Node> lhs;  // null: compare the element itself
  Op op = Op::kNone;
  // The right-hand side as GJSON compares it: a quoted string unescaped, a literal as written.
  std::string value;
  bool truthy = false;  // `~true` / `~false`: compare the element's truthiness
};

}  // namespace

struct GjsonPath::Node {
  enum class Kind { kKey, kCount, kEach, kQuery };
  Kind kind = Kind::kKey;
  std::string key;      // kKey: the unescaped key
  std::string pattern;  // kKey with wildcards: the key as written (escapes kept) for matching
  bool wildcard = false;
  Query query;       // kQuery
  bool all = false;  // kQuery: `#(...)#`
  std::shared_ptr<const Node> next;
};

namespace {

using Node = GjsonPath::Node;

Status ErrorAt(size_t position, std::string_view what) {
  return InvalidArgument("position " + std::to_string(position) + ": " + std::string(what));
}

// Index of the ')' that closes the '(' at `open`, skipping quoted strings; npos when missing.
size_t MatchingParen(std::string_view text, size_t open) {
  int depth = 0;
  for (size_t i = open; i < text.size(); ++i) {
    char c = text[i];
    if (c == '"') {
      for (++i; i < text.size() && text[i] != '"'; ++i) {
        if (text[i] == '\\') ++i;
      }
      if (i >= text.size()) return std::string_view::npos;
    } else if (c == '(') {
      ++depth;
    } else if (c == ')') {
      if (--depth == 0) return i;
    }
  }
  return std::string_view::npos;
}

std::string_view Trim(std::string_view s, size_t* leading = nullptr) {
  size_t b = 0;
  while (b < s.size() && (s[b] == ' ' || s[b] == '\t')) ++b;
  size_t e = s.size();
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) --e;
  if (leading) *leading = b;
  return s.substr(b, e - b);
}

StatusOr<std::shared_ptr<const Node>> ParsePath(std::string_view text, size_t base);

StatusOr<Query> ParseQuery(std::string_view body, size_t base) {
  Query query;
  // The left-hand path ends at the first operator character outside quotes and parentheses.
  size_t op_at = std::string_view::npos;
  int depth = 0;
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (c == '\\') {
      ++i;
    } else if (c == '"') {
      for (++i; i < body.size() && body[i] != '"'; ++i) {
        if (body[i] == '\\') ++i;
      }
    } else if (c == '(') {
      ++depth;
    } else if (c == ')') {
      --depth;
    } else if (depth == 0 && (c == '=' || c == '!' || c == '<' || c == '>' || c == '%')) {
      op_at = i;
      break;
    }
  }
  size_t lead = 0;
  std::string_view lhs = Trim(body.substr(0, op_at), &lead);
  if (!lhs.empty()) {
    auto parsed = ParsePath(lhs, base + lead);
    if (!parsed.ok()) return parsed.status();
    query.lhs = std::move(parsed).value();
  }
  if (op_at == std::string_view::npos) {
    if (lhs.empty()) return ErrorAt(base, "empty query, expected a path or a comparison");
    return query;  // existence of the left-hand path
  }
  std::string_view rest = body.substr(op_at);
  struct Spelling {
    std::string_view text;
    Op op;
  };
  static constexpr Spelling kOps[] = {{"==", Op::kEq}, {"!=", Op::kNe}, {"<=", Op::kLe},
                                      {">=", Op::kGe}, {"!%", Op::kNotLike}, {"=", Op::kEq},
                                      {"<", Op::kLt},  {">", Op::kGt},  {"%", Op::kLike}};
  size_t op_len = 0;
  for (const Spelling& s : kOps) {
    if (rest.substr(0, s.text.size()) == s.text) {
      query.op = s.op;
      op_len = s.text.size();
      break;
    }
  }
  if (op_len == 0) {
    return ErrorAt(base + op_at,
                   "unknown operator, expected one of ==, !=, <, <=, >, >=, %, !%");
  }
  size_t value_lead = 0;
  size_t value_base = base + op_at + op_len;
  std::string_view value = Trim(rest.substr(op_len), &value_lead);
  value_base += value_lead;
  if (value.empty()) return ErrorAt(value_base, "missing value after the operator");
  if (value[0] == '"') {
    Json parsed = Json::parse(value, nullptr, /*allow_exceptions=*/false);
    if (!parsed.is_string()) {
      return ErrorAt(value_base, "malformed quoted string " + std::string(value));
    }
    query.value = parsed.get<std::string>();
  } else if (value[0] == '~') {
    if (value != "~true" && value != "~false") {
      return ErrorAt(value_base, "expected ~true or ~false, got " + std::string(value));
    }
    query.truthy = true;
    query.value = std::string(value.substr(1));
  } else {
    Json literal = Json::parse(value, nullptr, /*allow_exceptions=*/false);
    if (!(literal.is_number() || literal.is_boolean() || literal.is_null())) {
      return ErrorAt(value_base, "expected a quoted string, a number, true, false, null, ~true "
                                 "or ~false, got " + std::string(value));
    }
    if ((query.op == Op::kLike || query.op == Op::kNotLike)) {
      return ErrorAt(value_base, "a % pattern must be a quoted string, got " + std::string(value));
    }
    query.value = std::string(value);
  }
  return query;
}

StatusOr<std::shared_ptr<const Node>> ParsePath(std::string_view text, size_t base) {
  if (text.empty()) return ErrorAt(base, "empty path");
  std::vector<std::shared_ptr<Node>> nodes;
  size_t i = 0;
  while (true) {
    auto node = std::make_shared<Node>();
    if (i >= text.size()) return ErrorAt(base + i, "empty key after '.'");
    char c = text[i];
    if (c == '#') {
      if (i + 1 == text.size()) {
        node->kind = Node::Kind::kCount;
        i += 1;
      } else if (text[i + 1] == '.') {
        node->kind = Node::Kind::kEach;
        i += 1;
      } else if (text[i + 1] == '(') {
        size_t close = MatchingParen(text, i + 1);
        if (close == std::string_view::npos) {
          return ErrorAt(base + text.size(), "unterminated query, expected ')'");
        }
        auto query = ParseQuery(text.substr(i + 2, close - i - 2), base + i + 2);
        if (!query.ok()) return query.status();
        node->kind = Node::Kind::kQuery;
        node->query = std::move(query).value();
        i = close + 1;
        if (i < text.size() && text[i] == '#') {
          node->all = true;
          ++i;
        }
      } else {
        return ErrorAt(base + i + 1, "expected '.', '(' or the end of the path after '#'");
      }
    } else if (c == '@') {
      return ErrorAt(base + i, "modifiers (@...) are not supported in conditions");
    } else if (i == 0 && nodes.empty() && (c == '[' || c == '{')) {
      return ErrorAt(base + i, "multipaths ([...] and {...}) are not supported in conditions");
    } else {
      size_t start = i;
      while (i < text.size() && text[i] != '.') {
        char k = text[i];
        if (k == '\\') {
          if (i + 1 >= text.size()) return ErrorAt(base + i, "'\\' at the end of the path");
          node->key += text[i + 1];
          i += 2;
          continue;
        }
        if (k == '|') return ErrorAt(base + i, "pipes (|) are not supported in conditions");
        if (k == '*' || k == '?') node->wildcard = true;
        if (k == '(' || k == ')' || k == '=' || k == '<' || k == '>' || k == '!' || k == '%') {
          return ErrorAt(base + i, std::string("unexpected '") + k +
                                       "' in a key (queries are written #(...); escape it with "
                                       "'\\' if it is part of the key)");
        }
        node->key += k;
        ++i;
      }
      if (i == start) return ErrorAt(base + start, "empty key");
      node->pattern = std::string(text.substr(start, i - start));
    }
    nodes.push_back(node);
    if (i == text.size()) break;
    if (text[i] != '.') {
      return ErrorAt(base + i, std::string("expected '.' or the end of the path, got '") +
                                   text[i] + "'");
    }
    ++i;  // the '.'
    if (i == text.size()) return ErrorAt(base + i, "empty key after '.'");
  }
  for (size_t k = nodes.size() - 1; k > 0; --k) nodes[k - 1]->next = nodes[k];
  return std::shared_ptr<const Node>(nodes.front());
}

std::optional<Json> Eval(const Node* node, const Json& value);

bool Truthy(const Json& v) {
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number()) return v.get<double>() != 0;
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    return s == "1" || s == "t" || s == "T" || s == "true" || s == "TRUE" || s == "True";
  }
  return false;
}

double ParseNumber(const std::string& text) {
  char* end = nullptr;
  double d = std::strtod(text.c_str(), &end);
  return end == text.c_str() ? 0.0 : d;
}

bool Matches(const Query& query, const Json& element) {
  std::optional<Json> value =
      query.lhs ? Eval(query.lhs.get(), element) : std::optional<Json>(element);
  if (query.truthy) value = Json(value.has_value() && Truthy(*value));
  if (!value) return false;
  if (query.op == Op::kNone) return true;
  const std::string& rpv = query.value;
  const Json& v = *value;
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    switch (query.op) {
      case Op::kEq: return s == rpv;
      case Op::kNe: return s != rpv;
      case Op::kLt: return s < rpv;
      case Op::kLe: return s <= rpv;
      case Op::kGt: return s > rpv;
      case Op::kGe: return s >= rpv;
      case Op::kLike: return GjsonPatternMatch(s, rpv);
      case Op::kNotLike: return !GjsonPatternMatch(s, rpv);
      case Op::kNone: return true;
    }
  }
  if (v.is_number()) {
    double n = v.get<double>();
    double r = ParseNumber(rpv);
    switch (query.op) {
      case Op::kEq: return n == r;
      case Op::kNe: return n != r;
      case Op::kLt: return n < r;
      case Op::kLe: return n <= r;
      case Op::kGt: return n > r;
      case Op::kGe: return n >= r;
      default: return false;
    }
  }
  if (v.is_boolean()) {
    // GJSON orders false before true.
    bool b = v.get<bool>();
    switch (query.op) {
      case Op::kEq: return rpv == (b ? "true" : "false");
      case Op::kNe: return rpv != (b ? "true" : "false");
      case Op::kGt: return b && rpv == "false";
      case Op::kGe: return b || rpv == "false";
      case Op::kLt: return !b && rpv == "true";
      case Op::kLe: return !b || rpv == "true";
      default: return false;
    }
  }
  return false;  // null, objects and arrays only satisfy existence queries
}

std::optional<size_t> ArrayIndex(const std::string& key) {
  if (key.empty() || key.size() > 18) return std::nullopt;
  size_t index = 0;
  auto [ptr, ec] = std::from_chars(key.data(), key.data() + key.size(), index);
  if (ec != std::errc() || ptr != key.data() + key.size()) return std::nullopt;
  return index;
}

std::optional<Json> Continue(const Node* node, const Json& value) {
  return node->next ? Eval(node->next.get(), value) : std::optional<Json>(value);
}

std::optional<Json> Eval(const Node* node, const Json& value) {
  switch (node->kind) {
    case Node::Kind::kKey:
      if (value.is_object()) {
        for (const auto& [key, child] : value.items()) {
          bool hit = node->wildcard ? GjsonPatternMatch(key, node->pattern) : key == node->key;
          if (hit) return Continue(node, child);
        }
        return std::nullopt;
      }
      if (value.is_array() && !node->wildcard) {
        auto index = ArrayIndex(node->key);
        if (index && *index < value.size()) return Continue(node, value[*index]);
      }
      return std::nullopt;
    case Node::Kind::kCount:
      if (!value.is_array()) return std::nullopt;
      return Json(value.size());
    case Node::Kind::kEach: {
      if (!value.is_array()) return std::nullopt;
      Json out = Json::array();
      for (const Json& element : value) {
        if (auto r = Eval(node->next.get(), element)) out.push_back(std::move(*r));
      }
      return out;
    }
    case Node::Kind::kQuery: {
      if (!value.is_array()) return std::nullopt;
      Json out = Json::array();
      for (const Json& element : value) {
        if (!Matches(node->query, element)) continue;
        if (!node->all) return Continue(node, element);
        if (auto r = Continue(node, element)) out.push_back(std::move(*r));
      }
      if (node->all) return out;
      return std::nullopt;
    }
  }
  return std::nullopt;
}

}  // namespace

StatusOr<GjsonPath> GjsonPath::Parse(std::string_view path) {
  auto first = ParsePath(path, 0);
  if (!first.ok()) return first.status();
  return GjsonPath(std::string(path), std::move(first).value());
}

std::optional<Json> GjsonPath::Get(const Json& doc) const {
  if (!first_) return std::nullopt;
  return Eval(first_.get(), doc);
}

bool GjsonPatternMatch(std::string_view text, std::string_view pattern) {
  // Iterative wildcard matching with one backtrack point (the last '*').
  size_t t = 0, p = 0;
  size_t star = std::string_view::npos, star_t = 0;
  while (t < text.size()) {
    if (p < pattern.size()) {
      char c = pattern[p];
      if (c == '*') {
        star = p++;
        star_t = t;
        continue;
      }
      if (c == '?') {
        ++p;
        ++t;
        continue;
      }
      if (c == '\\' && p + 1 < pattern.size()) {
        if (pattern[p + 1] == text[t]) {
          p += 2;
          ++t;
          continue;
        }
      } else if (c == text[t]) {
        ++p;
        ++t;
        continue;
      }
    }
    if (star == std::string_view::npos) return false;
    p = star + 1;
    t = ++star_t;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

}  // namespace quiver::graph
