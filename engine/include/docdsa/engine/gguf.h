// GGUF v2/v3 reader over a read-only memory map. The file is treated as hostile: every
// length, count, offset and size is checked against the bytes that remain before it is
// used, and every error names the key or tensor it concerns.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "docdsa/engine/result.h"
#include "docdsa/kernels/quant.h"

namespace docdsa::gguf {

enum class ValueType : uint32_t {
  kUint8 = 0, kInt8 = 1, kUint16 = 2, kInt16 = 3, kUint32 = 4, kInt32 = 5, kFloat32 = 6,
  kBool = 7, kString = 8, kArray = 9, kUint64 = 10, kInt64 = 11, kFloat64 = 12,
};
const char* value_type_name(ValueType t);

struct Value {
  ValueType type = ValueType::kUint8;
  // Scalars: exactly one of these is meaningful, by type.
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0.0;
  std::string_view s;  // kString, points into the map
  // Arrays.
  ValueType elem = ValueType::kUint8;
  uint64_t count = 0;
  const uint8_t* data = nullptr;          // numeric elements, little-endian, maybe unaligned
  std::vector<std::string_view> strings;  // string elements
};

struct TensorInfo {
  std::string name;
  std::vector<int64_t> ne;  // ne[0] is the contiguous dimension
  kernels::DType type = kernels::DType::F32;
  uint64_t offset = 0;      // relative to the data section
  const uint8_t* data = nullptr;
  uint64_t nbytes = 0;
  int64_t n_elements() const;
};

class File {
 public:
  static Result<std::unique_ptr<File>> open(const std::string& path);
  // Parses an in-memory copy (the fuzz target and tests use this).
  static Result<std::unique_ptr<File>> from_bytes(std::vector<uint8_t> bytes, std::string name);
  ~File();
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t size() const { return size_; }

  const Value* find(std::string_view key) const;
  const std::vector<std::string>& keys() const { return key_order_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* tensor(std::string_view name) const;
  // Drops the resident pages of [p, p + n) (whole pages inside it) when the file is memory-
  // mapped, so a range a backend copied elsewhere stops counting in RSS; read again, the pages
  // fault back in from the file. No-op for in-memory copies and for ranges outside the file.
  void release(const void* p, uint64_t n) const;

  // Typed getters: the key must exist and hold a compatible type (integers convert when the
  // value fits; floats accept any number). Errors name the key.
  Result<uint64_t> get_uint(std::string_view key) const;
  Result<double> get_float(std::string_view key) const;
  Result<std::string_view> get_string(std::string_view key) const;
  Result<bool> get_bool(std::string_view key) const;
  Result<const Value*> get_array(std::string_view key, ValueType elem) const;
  // Optional variants: the default when the key is absent, an error when it has a wrong type.
  Result<uint64_t> get_uint_or(std::string_view key, uint64_t def) const;
  Result<double> get_float_or(std::string_view key, double def) const;
  Result<std::string_view> get_string_or(std::string_view key, std::string_view def) const;
  Result<bool> get_bool_or(std::string_view key, bool def) const;

 private:
  File() = default;
  Status parse();

  std::string path_;
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  void* map_ = nullptr;            // mmap region, when mapped
  std::vector<uint8_t> owned_;     // in-memory copy, when not
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  std::unordered_map<std::string, Value> kv_;
  std::vector<std::string> key_order_;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;
};

}  // namespace docdsa::gguf
