// Tensor: a named, typed, shaped block of row-major bytes, as the Open Inference Protocol moves
// them. The bytes are either owned or borrowed from a buffer that a shared owner keeps alive (a
// request body, another tensor), so decoding and echoing need not copy.
// A Tensor is a value: copying it shares the bytes. Not synchronised; share only immutable ones.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/status.h"
#include "tensor/datatype.h"

namespace quiver {

using Shape = std::vector<int64_t>;

// Number of elements of a shape (1 for a scalar); -1 if a dimension is negative or it overflows.
int64_t ElementCount(const Shape& shape);
// "[1, 16]" for messages.
std::string ShapeToString(const Shape& shape);

// A protocol parameter: string, number or bool. Integers and floats are kept apart so they
// round-trip exactly; uint64_t holds only values above INT64_MAX.
using ParameterValue = std::variant<bool, int64_t, uint64_t, double, std::string>;

// Ordered list of named parameters (order is kept so responses echo requests faithfully).
class Parameters {
 public:
  void Set(std::string name, ParameterValue value);
  const ParameterValue* Find(std::string_view name) const;
  bool empty() const { return items_.empty(); }
  size_t size() const { return items_.size(); }
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }
  // Typed look-ups for callers that want one kind; nullopt when absent or of another kind.
  std::optional<bool> GetBool(std::string_view name) const;
  std::optional<int64_t> GetInt(std::string_view name) const;

 private:
  std::vector<std::pair<std::string, ParameterValue>> items_;
};

// Bytes of a tensor, owned or borrowed.
class TensorData {
 public:
  TensorData() = default;
  // Uninitialised writable storage of n bytes.
  static TensorData Allocate(size_t n);
  static TensorData CopyOf(const void* data, size_t n);
  // Borrows [data, data+n) and keeps `owner` alive as long as any copy of this exists.
  static TensorData Borrow(const void* data, size_t n, std::shared_ptr<const void> owner);
  // Takes a string's bytes without copying them.
  static TensorData FromString(std::string bytes);

  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  // Writable view; only for storage made by Allocate and not yet shared.
  std::byte* mutable_data() { return writable_ ? const_cast<std::byte*>(data_) : nullptr; }

 private:
  std::shared_ptr<const void> owner_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
  bool writable_ = false;
};

struct Tensor {
  std::string name;
  DataType datatype = DataType::kFp32;
  Shape shape;
  Parameters parameters;
  TensorData data;

  int64_t element_count() const { return ElementCount(shape); }

  // Typed view of fixed-size data. T must match the datatype's element size.
  template <typename T>
  std::span<const T> values() const {
    return {reinterpret_cast<const T*>(data.data()), data.size() / sizeof(T)};
  }
};

// Checks that a tensor's bytes agree with its datatype and shape: size = count × element size,
// or, for BYTES, exactly `count` length-prefixed elements filling the buffer. The message names
// the tensor.
Status ValidateTensorData(const Tensor& tensor);

// Iterates the elements of a BYTES buffer. Call only on validated data.
template <typename Fn>
void ForEachBytesElement(const TensorData& data, Fn&& fn) {
  const std::byte* p = data.data();
  const std::byte* end = p + data.size();
  while (p + 4 <= end) {
    uint32_t len;
    std::memcpy(&len, p, 4);  // little-endian hosts only; checked at build time in tensor.cc
    p += 4;
    fn(std::string_view(reinterpret_cast<const char*>(p), len));
    p += len;
  }
}

// Builds a BYTES buffer element by element.
class BytesTensorBuilder {
 public:
  void Append(std::string_view element);
  size_t count() const { return count_; }
  TensorData Finish() { return TensorData::FromString(std::move(buffer_)); }

 private:
  std::string buffer_;
  size_t count_ = 0;
};

}  // namespace quiver
