#include "spec/field_reader.h"

#include <algorithm>

namespace quiver::spec {

void FieldErrors::Add(std::string_view path, std::string_view reason) {
  std::string message(path);
  message += ": ";
  message += reason;
  messages_.push_back(std::move(message));
}

Status FieldErrors::ToStatus() const {
  if (messages_.empty()) return Status::Ok();
  std::string joined;
  for (const std::string& message : messages_) {
    if (!joined.empty()) joined += "; ";
    joined += message;
  }
  return InvalidArgument(std::move(joined));
}

namespace {

bool IsIdentifier(std::string_view key) {
  if (key.empty()) return false;
  return std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

}  // namespace

std::string FieldPath(std::string_view base, std::string_view key) {
  std::string path(base);
  if (IsIdentifier(key)) {
    if (!path.empty()) path += '.';
    path += key;
  } else {
    path += "[\"";
    path += key;
    path += "\"]";
  }
  return path;
}

std::string IndexPath(std::string_view base, size_t index) {
  std::string path(base);
  path += '[';
  path += std::to_string(index);
  path += ']';
  return path;
}

std::string Describe(const Json& value) {
  switch (value.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::boolean:
      return value.get<bool>() ? "boolean true" : "boolean false";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return "integer " + value.dump();
    case Json::value_t::number_float:
      return "number " + value.dump();
    case Json::value_t::string: {
      std::string text = value.get<std::string>();
      if (text.size() > 64) text = text.substr(0, 61) + "...";
      return "string " + Json(text).dump();
    }
    case Json::value_t::array:
      return "a list";
    case Json::value_t::object:
      return "an object";
    default:
      return "an unsupported value";
  }
}

void CheckKnownFields(const Json& object, std::string_view path, FieldList modelled,
                      FieldList ignored, FieldErrors& errors) {
  for (const auto& [key, value] : object.items()) {
    bool known = std::find(modelled.begin(), modelled.end(), key) != modelled.end() ||
                 std::find(ignored.begin(), ignored.end(), key) != ignored.end();
    if (!known) errors.Add(FieldPath(path, key), "unknown field");
  }
}

void CheckKnownFields(const Json& object, std::string_view path,
                      const std::vector<std::string_view>& allowed, FieldErrors& errors) {
  for (const auto& [key, value] : object.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      errors.Add(FieldPath(path, key), "unknown field");
    }
  }
}

namespace {

const Json* Find(const Json& object, std::string_view key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

}  // namespace

std::optional<std::string> ReadString(const Json& object, std::string_view key,
                                      std::string_view path, FieldErrors& errors) {
  const Json* value = Find(object, key);
  if (value == nullptr) return std::nullopt;
  if (!value->is_string()) {
    errors.Add(FieldPath(path, key), "must be a string, got " + Describe(*value));
    return std::nullopt;
  }
  return value->get<std::string>();
}

std::optional<int64_t> ReadInt(const Json& object, std::string_view key, std::string_view path,
                               FieldErrors& errors) {
  const Json* value = Find(object, key);
  if (value == nullptr) return std::nullopt;
  if (value->is_number_unsigned()) {
    uint64_t unsigned_value = value->get<uint64_t>();
    if (unsigned_value > static_cast<uint64_t>(INT32_MAX)) {
      errors.Add(FieldPath(path, key), "must be at most 2147483647, got " + Describe(*value));
      return std::nullopt;
    }
    return static_cast<int64_t>(unsigned_value);
  }
  if (!value->is_number_integer()) {
    errors.Add(FieldPath(path, key), "must be an integer, got " + Describe(*value));
    return std::nullopt;
  }
  int64_t result = value->get<int64_t>();
  // Kubernetes declares these fields int32; larger values would not survive a round trip.
  if (result > INT32_MAX || result < INT32_MIN) {
    errors.Add(FieldPath(path, key), "must fit in 32 bits, got " + Describe(*value));
    return std::nullopt;
  }
  return result;
}

std::optional<bool> ReadBool(const Json& object, std::string_view key, std::string_view path,
                             FieldErrors& errors) {
  const Json* value = Find(object, key);
  if (value == nullptr) return std::nullopt;
  if (!value->is_boolean()) {
    errors.Add(FieldPath(path, key), "must be true or false, got " + Describe(*value));
    return std::nullopt;
  }
  return value->get<bool>();
}

const Json* ReadObject(const Json& object, std::string_view key, std::string_view path,
                       FieldErrors& errors) {
  const Json* value = Find(object, key);
  if (value == nullptr) return nullptr;
  if (!value->is_object()) {
    errors.Add(FieldPath(path, key), "must be an object, got " + Describe(*value));
    return nullptr;
  }
  return value;
}

const Json* ReadArray(const Json& object, std::string_view key, std::string_view path,
                      FieldErrors& errors) {
  const Json* value = Find(object, key);
  if (value == nullptr) return nullptr;
  if (!value->is_array()) {
    errors.Add(FieldPath(path, key), "must be a list, got " + Describe(*value));
    return nullptr;
  }
  return value;
}

std::map<std::string, std::string> ReadStringMap(const Json& object, std::string_view key,
                                                 std::string_view path, FieldErrors& errors) {
  std::map<std::string, std::string> result;
  const Json* map = ReadObject(object, key, path, errors);
  if (map == nullptr) return result;
  std::string map_path = FieldPath(path, key);
  for (const auto& [entry_key, entry_value] : map->items()) {
    if (!entry_value.is_string()) {
      // Kubernetes rejects `prometheus.kserve.io/port: 8080` too: label and annotation values
      // are strings, so the number has to be quoted.
      errors.Add(FieldPath(map_path, entry_key),
                 "must be a string (quote it), got " + Describe(entry_value));
      continue;
    }
    result.emplace(entry_key, entry_value.get<std::string>());
  }
  return result;
}

std::vector<std::string> ReadStringList(const Json& object, std::string_view key,
                                        std::string_view path, FieldErrors& errors) {
  std::vector<std::string> result;
  const Json* list = ReadArray(object, key, path, errors);
  if (list == nullptr) return result;
  std::string list_path = FieldPath(path, key);
  for (size_t i = 0; i < list->size(); ++i) {
    const Json& item = (*list)[i];
    if (!item.is_string()) {
      errors.Add(IndexPath(list_path, i), "must be a string (quote it), got " + Describe(item));
      continue;
    }
    result.push_back(item.get<std::string>());
  }
  return result;
}

bool CheckEnum(const std::string& value, FieldList allowed, std::string_view path,
               FieldErrors& errors) {
  if (std::find(allowed.begin(), allowed.end(), value) != allowed.end()) return true;
  std::string expected;
  for (std::string_view option : allowed) {
    if (!expected.empty()) expected += '|';
    expected += option;
  }
  errors.Add(path, "must be one of " + expected + ", got " + Json(value).dump());
  return false;
}

bool IsDns1123Label(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  if (!IsLowerAlnum(name.front()) || !IsLowerAlnum(name.back())) return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return IsLowerAlnum(c) || c == '-'; });
}

bool IsDns1035Label(std::string_view name) {
  return IsDns1123Label(name) && name.front() >= 'a' && name.front() <= 'z';
}

bool IsDns1123Subdomain(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  size_t start = 0;
  while (true) {
    size_t dot = name.find('.', start);
    std::string_view label =
        name.substr(start, dot == std::string_view::npos ? name.npos : dot - start);
    if (!IsDns1123Label(label)) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

}  // namespace quiver::spec
