#include "tensor/tensor.h"

#include <bit>
#include <limits>

namespace quiver {

static_assert(std::endian::native == std::endian::little,
              "the protocol's binary forms are little-endian; big-endian hosts need byte swaps");

int64_t ElementCount(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return -1;
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d) return -1;
    n *= d;
  }
  return n;
}

std::string ShapeToString(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  s += "]";
  return s;
}

void Parameters::Set(std::string name, ParameterValue value) {
  for (auto& [k, v] : items_) {
    if (k == name) {
      v = std::move(value);
      return;
    }
  }
  items_.emplace_back(std::move(name), std::move(value));
}

const ParameterValue* Parameters::Find(std::string_view name) const {
  for (const auto& [k, v] : items_) {
    if (k == name) return &v;
  }
  return nullptr;
}

std::optional<bool> Parameters::GetBool(std::string_view name) const {
  const ParameterValue* v = Find(name);
  if (v == nullptr || !std::holds_alternative<bool>(*v)) return std::nullopt;
  return std::get<bool>(*v);
}

std::optional<int64_t> Parameters::GetInt(std::string_view name) const {
  const ParameterValue* v = Find(name);
  if (v == nullptr || !std::holds_alternative<int64_t>(*v)) return std::nullopt;
  return std::get<int64_t>(*v);
}

TensorData TensorData::Allocate(size_t n) {
  TensorData t;
  std::shared_ptr<std::byte[]> buf(new std::byte[n == 0 ? 1 : n]);
  t.data_ = buf.get();
  t.size_ = n;
  t.owner_ = std::move(buf);
  t.writable_ = true;
  return t;
}

TensorData TensorData::CopyOf(const void* data, size_t n) {
  TensorData t = Allocate(n);
  if (n) std::memcpy(t.mutable_data(), data, n);
  t.writable_ = false;
  return t;
}

TensorData TensorData::Borrow(const void* data, size_t n, std::shared_ptr<const void> owner) {
  TensorData t;
  t.data_ = static_cast<const std::byte*>(data);
  t.size_ = n;
  t.owner_ = std::move(owner);
  return t;
}

TensorData TensorData::FromString(std::string bytes) {
  auto holder = std::make_shared<const std::string>(std::move(bytes));
  const void* p = holder->data();
  size_t n = holder->size();
  return Borrow(p, n, std::move(holder));
}

Status ValidateTensorData(const Tensor& tensor) {
  int64_t count = tensor.element_count();
  if (count < 0) {
    return InvalidArgument("tensor '" + tensor.name + "': invalid shape " +
                           ShapeToString(tensor.shape));
  }
  if (tensor.datatype != DataType::kBytes) {
    size_t want = static_cast<size_t>(count) * DataTypeSize(tensor.datatype);
    if (tensor.data.size() != want) {
      return InvalidArgument("tensor '" + tensor.name + "': shape " +
                             ShapeToString(tensor.shape) + " of " +
                             std::string(DataTypeName(tensor.datatype)) + " needs " +
                             std::to_string(want) + " bytes, got " +
                             std::to_string(tensor.data.size()));
    }
    return Status::Ok();
  }
  const std::byte* p = tensor.data.data();
  size_t left = tensor.data.size();
  int64_t seen = 0;
  while (left > 0) {
    if (left < 4) {
      return InvalidArgument("tensor '" + tensor.name + "': BYTES element " +
                             std::to_string(seen) + " has a truncated 4-byte length");
    }
    uint32_t len;
    std::memcpy(&len, p, 4);
    p += 4;
    left -= 4;
    if (len > left) {
      return InvalidArgument("tensor '" + tensor.name + "': BYTES element " +
                             std::to_string(seen) + " declares " + std::to_string(len) +
                             " bytes but only " + std::to_string(left) + " remain");
    }
    p += len;
    left -= len;
    ++seen;
  }
  if (seen != count) {
    return InvalidArgument("tensor '" + tensor.name + "': shape " + ShapeToString(tensor.shape) +
                           " needs " + std::to_string(count) + " BYTES elements, got " +
                           std::to_string(seen));
  }
  return Status::Ok();
}

void BytesTensorBuilder::Append(std::string_view element) {
  uint32_t len = static_cast<uint32_t>(element.size());
  char prefix[4];
  std::memcpy(prefix, &len, 4);
  buffer_.append(prefix, 4);
  buffer_.append(element);
  ++count_;
}

}  // namespace quiver
