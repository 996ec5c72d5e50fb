// Building blocks for the validators of this module (private to src/spec): a list of errors
// with field paths, and typed reads of JSON fields that record a precise error instead of
// throwing. Not thread-safe; one FieldErrors per validation run.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "spec/resource.h"

namespace quiver::spec {

// Collects "path: reason" messages; ToStatus joins them with "; " (KServe reports all at once).
class FieldErrors {
 public:
  void Add(std::string_view path, std::string_view reason);
  bool empty() const { return messages_.empty(); }
  size_t size() const { return messages_.size(); }
  const std::vector<std::string>& messages() const { return messages_; }
  Status ToStatus() const;

 private:
  std::vector<std::string> messages_;
};

// "spec" + "predictor" → "spec.predictor"; keys that are not identifiers (annotation keys such
// as "prometheus.kserve.io/port") are written as
// `metadata.annotations["prometheus.kserve.io/port"]`.
std::string FieldPath(std::string_view base, std::string_view key);
// "spec.steps" + 2 → "spec.steps[2]".
std::string IndexPath(std::string_view base, size_t index);
// How a value reads in an error message: `integer -1`, `string "1"`, `a list`, ...
std::string Describe(const Json& value);

// Field-name lists for CheckKnownFields. `modelled` are fields Quiver reads; `ignored` are
// Kubernetes fields accepted for compatibility but meaningless for a local process.
using FieldList = std::initializer_list<std::string_view>;

// Reports every key of `object` that is in none of the lists as "path.key: unknown field".
// `object` must be an object.
void CheckKnownFields(const Json& object, std::string_view path, FieldList modelled,
                      FieldList ignored, FieldErrors& errors);
void CheckKnownFields(const Json& object, std::string_view path,
                      const std::vector<std::string_view>& allowed, FieldErrors& errors);

// Typed reads of `object[key]` (object must be an object). Absent or null → nullopt without an
// error; present with the wrong type → nullopt and an error naming the path and what was found.
std::optional<std::string> ReadString(const Json& object, std::string_view key,
                                      std::string_view path, FieldErrors& errors);
std::optional<int64_t> ReadInt(const Json& object, std::string_view key, std::string_view path,
                               FieldErrors& errors);
std::optional<bool> ReadBool(const Json& object, std::string_view key, std::string_view path,
                             FieldErrors& errors);
// An object, or nullptr (absent/null, or wrong type which is reported).
const Json* ReadObject(const Json& object, std::string_view key, std::string_view path,
                       FieldErrors& errors);
// A list, or nullptr (absent/null, or wrong type which is reported).
const Json* ReadArray(const Json& object, std::string_view key, std::string_view path,
                      FieldErrors& errors);
// A map of string to string (labels, annotations, nodeSelector); wrong entries are reported.
std::map<std::string, std::string> ReadStringMap(const Json& object, std::string_view key,
                                                 std::string_view path, FieldErrors& errors);
// A list of strings (args, command).
std::vector<std::string> ReadStringList(const Json& object, std::string_view key,
                                        std::string_view path, FieldErrors& errors);

// `value` is one of `allowed`; otherwise "path: must be one of a|b|c, got "x"".
bool CheckEnum(const std::string& value, FieldList allowed, std::string_view path,
               FieldErrors& errors);

// Kubernetes name rules. DNS-1035 label: lower-case alphanumerics and '-', starts with a letter,
// ends with an alphanumeric, at most 63. DNS-1123 label: the same but may start with a digit.
// DNS-1123 subdomain: DNS-1123 labels joined by '.', at most 253.
bool IsDns1035Label(std::string_view name);
bool IsDns1123Label(std::string_view name);
bool IsDns1123Subdomain(std::string_view name);

}  // namespace quiver::spec
