// ParseManifests and ToYaml: YAML/JSON text ⇄ JSON documents with yaml-cpp.
//
// yaml-cpp gives every scalar as text plus a tag: "!" for quoted scalars (always strings), "?"
// for plain ones, whose type we resolve with the YAML 1.2 core schema (so `1` is an integer,
// `"1"` a string, `true` a boolean, `~`/`null`/empty a null). Kubernetes' own YAML reader uses the
// older 1.1 rules where `yes`/`no`/`on`/`off` are booleans too; Quiver keeps them strings, which
// only matters for unquoted values that are meant as booleans.
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cmath>
#include <limits>
#include <regex>

#include "spec/field_reader.h"
#include "spec/resource.h"

namespace quiver::spec {
namespace {

constexpr std::string_view kTagString = "tag:yaml.org,2002:str";
constexpr std::string_view kTagInt = "tag:yaml.org,2002:int";
constexpr std::string_view kTagFloat = "tag:yaml.org,2002:float";
constexpr std::string_view kTagBool = "tag:yaml.org,2002:bool";
constexpr std::string_view kTagNull = "tag:yaml.org,2002:null";
constexpr std::string_view kTagMap = "tag:yaml.org,2002:map";
constexpr std::string_view kTagSeq = "tag:yaml.org,2002:seq";

bool IsNullText(std::string_view text) {
  return text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL";
}

std::optional<bool> BoolFromText(std::string_view text) {
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  return std::nullopt;
}

// Integers as the core schema writes them: decimal with optional sign, 0o octal, 0x hex.
// Values beyond int64 become unsigned when they fit, else the caller falls back to a double.
std::optional<Json> IntFromText(std::string_view text) {
  static const std::regex kDecimal("[-+]?[0-9]+");
  static const std::regex kOctal("0o[0-7]+");
  static const std::regex kHex("0x[0-9a-fA-F]+");
  std::string s(text);
  int base = 10;
  std::string_view digits = text;
  if (std::regex_match(s, kOctal)) {
    base = 8;
    digits = text.substr(2);
  } else if (std::regex_match(s, kHex)) {
    base = 16;
    digits = text.substr(2);
  } else if (!std::regex_match(s, kDecimal)) {
    return std::nullopt;
  }
  bool negative = false;
  if (!digits.empty() && (digits.front() == '+' || digits.front() == '-')) {
    negative = digits.front() == '-';
    digits.remove_prefix(1);
  }
  uint64_t magnitude = 0;
  auto [end, error] =
      std::from_chars(digits.data(), digits.data() + digits.size(), magnitude, base);
  if (error != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  if (!negative) {
    if (magnitude <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Json(static_cast<int64_t>(magnitude));
    }
    return Json(magnitude);
  }
  if (magnitude <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + 1) {
    return Json(static_cast<int64_t>(0 - magnitude));
  }
  return std::nullopt;
}

std::optional<double> FloatFromText(std::string_view text) {
  static const std::regex kFloat("[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?");
  static const std::regex kInf("[-+]?\\.(inf|Inf|INF)");
  static const std::regex kNan("\\.(nan|NaN|NAN)");
  std::string s(text);
  if (std::regex_match(s, kInf)) {
    return s[0] == '-' ? -std::numeric_limits<double>::infinity()
                       : std::numeric_limits<double>::infinity();
  }
  if (std::regex_match(s, kNan)) return std::numeric_limits<double>::quiet_NaN();
  if (!std::regex_match(s, kFloat)) return std::nullopt;
  // strtod accepts what the regex allows; from_chars for double rejects a leading '+'.
  return std::strtod(s.c_str(), nullptr);
}

// The core-schema type of an unquoted scalar.
Json ResolvePlain(std::string_view text) {
  if (IsNullText(text)) return nullptr;
  if (auto b = BoolFromText(text)) return *b;
  if (auto i = IntFromText(text)) return *i;
  if (auto d = FloatFromText(text)) return *d;
  return std::string(text);
}

std::string Where(const YAML::Mark& mark) {
  if (mark.is_null()) return "";
  return "line " + std::to_string(mark.line + 1) + ", column " + std::to_string(mark.column + 1);
}

class Converter {
 public:
  explicit Converter(std::string prefix) : prefix_(std::move(prefix)) {}

  StatusOr<Json> Convert(const YAML::Node& node) {
    Json result = ConvertNode(node, 0);
    if (!error_.empty()) return InvalidArgument(error_);
    return result;
  }

 private:
  void Fail(const YAML::Mark& mark, std::string_view message) {
    if (!error_.empty()) return;
    error_ = prefix_;
    std::string where = Where(mark);
    if (!where.empty()) error_ += ", " + where;
    error_ += ": ";
    error_ += message;
  }

  Json ConvertScalar(const YAML::Node& node) {
    const std::string& tag = node.Tag();
    const std::string& text = node.Scalar();
    if (tag == "!" || tag == kTagString) return text;
    if (tag == "?" || tag.empty()) return ResolvePlain(text);
    if (tag == kTagInt) {
      if (auto i = IntFromText(text)) return *i;
      Fail(node.Mark(), "\"" + text + "\" is not an integer (tagged !!int)");
    } else if (tag == kTagFloat) {
      if (auto i = IntFromText(text)) return static_cast<double>(i->get<int64_t>());
      if (auto d = FloatFromText(text)) return *d;
      Fail(node.Mark(), "\"" + text + "\" is not a number (tagged !!float)");
    } else if (tag == kTagBool) {
      if (auto b = BoolFromText(text)) return *b;
      Fail(node.Mark(), "\"" + text + "\" is not a boolean (tagged !!bool)");
    } else if (tag == kTagNull) {
      if (IsNullText(text)) return nullptr;
      Fail(node.Mark(), "\"" + text + "\" is not null (tagged !!null)");
    } else {
      Fail(node.Mark(), "unsupported tag " + tag + " (a JSON value cannot carry it)");
    }
    return nullptr;
  }

  // Merge keys (`<<: *defaults`) as Kubernetes' YAML reader supports them: keys written in the
  // mapping itself win over merged ones.
  void MergeInto(Json& target, const YAML::Node& source, int depth) {
    auto merge_one = [&](const YAML::Node& map) {
      if (!map.IsMap()) {
        Fail(map.Mark(), "a merge key (<<) needs a mapping or a list of mappings");
        return;
      }
      Json merged = ConvertNode(map, depth + 1);
      if (!merged.is_object()) return;
      for (auto& [key, value] : merged.items()) {
        if (!target.contains(key)) target[key] = value;
      }
    };
    if (source.IsSequence()) {
      for (const YAML::Node& item : source) merge_one(item);
    } else {
      merge_one(source);
    }
  }

  Json ConvertNode(const YAML::Node& node, int depth) {
    if (!error_.empty()) return nullptr;
    // Aliases can nest documents exponentially; real manifests are shallow.
    if (depth > 100) {
      Fail(node.Mark(), "nested more than 100 levels deep");
      return nullptr;
    }
    switch (node.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        return nullptr;
      case YAML::NodeType::Scalar:
        return ConvertScalar(node);
      case YAML::NodeType::Sequence: {
        if (!node.Tag().empty() && node.Tag() != "?" && node.Tag() != "!" &&
            node.Tag() != kTagSeq) {
          Fail(node.Mark(), "unsupported tag " + node.Tag() + " on a list");
          return nullptr;
        }
        Json list = Json::array();
        for (const YAML::Node& item : node) list.push_back(ConvertNode(item, depth + 1));
        return list;
      }
      case YAML::NodeType::Map: {
        if (!node.Tag().empty() && node.Tag() != "?" && node.Tag() != "!" &&
            node.Tag() != kTagMap) {
          Fail(node.Mark(), "unsupported tag " + node.Tag() + " on a mapping");
          return nullptr;
        }
        Json object = Json::object();
        std::vector<YAML::Node> merges;
        for (auto it = node.begin(); it != node.end(); ++it) {
          // Copies: the iterator yields a temporary pair of node handles.
          const YAML::Node key = it->first;
          const YAML::Node value = it->second;
          if (!key.IsScalar() && !key.IsNull()) {
            Fail(key.Mark(), "a mapping key must be a plain value, not a list or mapping");
            return nullptr;
          }
          std::string key_text = key.IsScalar() ? key.Scalar() : "null";
          if (key_text == "<<" && key.Tag() == "?") {
            merges.push_back(value);
            continue;
          }
          if (object.contains(key_text)) {
            Fail(key.Mark(), "duplicate key \"" + key_text + "\"");
            return nullptr;
          }
          object[key_text] = ConvertNode(value, depth + 1);
        }
        for (const YAML::Node& merge : merges) MergeInto(object, merge, depth);
        return object;
      }
    }
    return nullptr;
  }

  std::string prefix_;
  std::string error_;
};

// Which document (1-based) holds `line` (0-based), counting `---` separators that follow some
// content; used only to name the document in a syntax error.
int DocumentOfLine(std::string_view text, int line) {
  int document = 1;
  bool seen_content = false;
  int current = 0;
  size_t start = 0;
  while (start <= text.size() && current < line) {
    size_t end = text.find('\n', start);
    std::string_view row = text.substr(start, end == text.npos ? text.npos : end - start);
    if (row.substr(0, 3) == "---" && (row.size() == 3 || row[3] == ' ' || row[3] == '\r')) {
      if (seen_content) ++document;
      seen_content = false;
    } else {
      size_t first = row.find_first_not_of(" \t\r");
      if (first != row.npos && row[first] != '#' && row.substr(0, 3) != "...") {
        seen_content = true;
      }
    }
    if (end == text.npos) break;
    start = end + 1;
    ++current;
  }
  return document;
}

}  // namespace

StatusOr<std::vector<Manifest>> ParseManifests(std::string_view text, std::string_view source) {
  std::vector<YAML::Node> nodes;
  try {
    nodes = YAML::LoadAll(std::string(text));
  } catch (const YAML::ParserException& e) {
    return InvalidArgument(std::string(source) + ", document " +
                           std::to_string(DocumentOfLine(text, e.mark.line)) + ", " +
                           Where(e.mark) + ": " + e.msg);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(std::string(source) + ": " + e.what());
  }
  std::vector<Manifest> manifests;
  int document = 0;
  for (const YAML::Node& node : nodes) {
    ++document;
    if (node.IsNull() || !node.IsDefined()) continue;  // empty document, e.g. a trailing `---`
    std::string name = std::string(source) + ", document " + std::to_string(document);
    QUIVER_ASSIGN_OR_RETURN(Json doc, Converter(name).Convert(node));
    if (!doc.is_object()) {
      return InvalidArgument(name + ", " + Where(node.Mark()) +
                             ": expected a mapping with apiVersion and kind, got " + Describe(doc));
    }
    auto kind = doc.find("kind");
    if (kind != doc.end() && kind->is_string() && kind->get<std::string>() == "List") {
      // kubectl's `kind: List` (what `kubectl get -o yaml` prints for several objects).
      auto items = doc.find("items");
      if (items == doc.end() || items->is_null()) continue;
      if (!items->is_array()) {
        return InvalidArgument(name + ": items: must be a list, got " + Describe(*items));
      }
      for (size_t i = 0; i < items->size(); ++i) {
        Json& item = (*items)[i];
        std::string item_name = name + ", " + IndexPath("items", i);
        if (!item.is_object()) {
          return InvalidArgument(item_name + ": expected a mapping with apiVersion and kind, got " +
                                 Describe(item));
        }
        manifests.push_back(Manifest{std::move(item), std::move(item_name)});
      }
      continue;
    }
    manifests.push_back(Manifest{std::move(doc), std::move(name)});
  }
  return manifests;
}

namespace {

// Whether a plain scalar `text` would read back as something other than this string, under
// YAML 1.2 (our reader) or YAML 1.1 (kubectl's: yes/no/on/off are booleans, 0755 octal, 1:30 a
// sexagesimal number). yaml-cpp itself only quotes what would not parse at all.
bool NeedsQuotes(const std::string& text) {
  static const std::regex kYaml11NotString(
      "|~|null|Null|NULL|y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|"
      "on|On|ON|off|Off|OFF|"
      "[-+]?(\\.[0-9]+|[0-9][0-9_]*(\\.[0-9_]*)?)([eE][-+]?[0-9]+)?|"
      "[-+]?0[xXoObB][0-9a-fA-F_]+|"
      "[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\\.[0-9_]*)?|"
      "[-+]?\\.(inf|Inf|INF)|\\.(nan|NaN|NAN)|=|<<");
  return !ResolvePlain(text).is_string() || std::regex_match(text, kYaml11NotString) ||
         text.find_first_of("\n\r\t") != std::string::npos;
}

void EmitString(YAML::Emitter& out, const std::string& text, bool is_key) {
  // Multi-line text (a ConfigMap's file, a script) reads best as a literal block, which keeps
  // it exactly when it ends with one newline and has no tabs, carriage returns, line-end
  // spaces or leading space.
  const bool literal = !is_key && text.size() > 1 && text.back() == '\n' &&
                       text[text.size() - 2] != '\n' &&
                       text.find_first_of("\t\r") == std::string::npos &&
                       text.find(" \n") == std::string::npos && text.front() != ' ';
  if (literal) {
    out << YAML::Literal;
  } else if (NeedsQuotes(text)) {
    out << YAML::DoubleQuoted;
  }
  out << text;
}

void EmitValue(YAML::Emitter& out, const Json& value) {
  switch (value.type()) {
    case Json::value_t::null:
      out << YAML::Null;
      break;
    case Json::value_t::boolean:
      out << (value.get<bool>() ? "true" : "false");
      break;
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      out << value.dump();
      break;
    case Json::value_t::number_float: {
      double d = value.get<double>();
      if (std::isnan(d)) {
        out << ".nan";
      } else if (std::isinf(d)) {
        out << (d < 0 ? "-.inf" : ".inf");
      } else {
        // nlohmann prints the shortest text that reads back as the same double, and keeps a
        // ".0" on integral values so they stay numbers, not integers.
        out << value.dump();
      }
      break;
    }
    case Json::value_t::string:
      EmitString(out, value.get<std::string>(), /*is_key=*/false);
      break;
    case Json::value_t::array:
      if (value.empty()) out << YAML::Flow;
      out << YAML::BeginSeq;
      for (const Json& item : value) EmitValue(out, item);
      out << YAML::EndSeq;
      break;
    case Json::value_t::object:
      if (value.empty()) out << YAML::Flow;
      out << YAML::BeginMap;
      for (const auto& [key, item] : value.items()) {
        out << YAML::Key;
        EmitString(out, key, /*is_key=*/true);
        out << YAML::Value;
        EmitValue(out, item);
      }
      out << YAML::EndMap;
      break;
    default:
      out << YAML::Null;
      break;
  }
}

}  // namespace

std::string ToYaml(const Json& doc) {
  YAML::Emitter out;
  out.SetIndent(2);
  EmitValue(out, doc);
  std::string text = out.c_str();
  text += '\n';
  return text;
}

}  // namespace quiver::spec
