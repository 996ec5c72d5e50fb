// The 14 Open Inference Protocol datatypes, their wire names and element sizes. Pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace quiver {

enum class DataType : uint8_t {
  kBool,
  kUint8,
  kUint16,
  kUint32,
  kUint64,
  kInt8,
  kInt16,
  kInt32,
  kInt64,
  kFp16,
  kFp32,
  kFp64,
  kBf16,
  kBytes,  // variable size: each element is a 4-byte little-endian length and that many bytes
};

inline constexpr int kDataTypeCount = 14;

// "BOOL", "UINT8", ..., "BYTES".
std::string_view DataTypeName(DataType type);
// Parses a wire name; exact, case-sensitive as the protocol spells them.
std::optional<DataType> ParseDataType(std::string_view name);
// Size of one element in bytes; 0 for BYTES.
size_t DataTypeSize(DataType type);

inline bool IsInteger(DataType t) {
  return t >= DataType::kUint8 && t <= DataType::kInt64;
}
inline bool IsUnsigned(DataType t) { return t >= DataType::kUint8 && t <= DataType::kUint64; }
inline bool IsFloat(DataType t) {
  return t == DataType::kFp16 || t == DataType::kFp32 || t == DataType::kFp64 ||
         t == DataType::kBf16;
}

}  // namespace quiver
