#include "docdsa/engine/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

namespace docdsa::gguf {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr uint64_t kMaxDims = 4;

size_t scalar_size(ValueType t) {
  switch (t) {
    case ValueType::kUint8: case ValueType::kInt8: case ValueType::kBool: return 1;
    case ValueType::kUint16: case ValueType::kInt16: return 2;
    case ValueType::kUint32: case ValueType::kInt32: case ValueType::kFloat32: return 4;
    case ValueType::kUint64: case ValueType::kInt64: case ValueType::kFloat64: return 8;
    default: return 0;
  }
}

// Bounds-checked cursor over the file bytes.
class Cursor {
 public:
  Cursor(const uint8_t* p, uint64_t n) : base_(p), size_(n) {}
  uint64_t pos() const { return pos_; }
  uint64_t left() const { return size_ - pos_; }

  template <typename T>
  Result<T> read(const char* what) {
    if (left() < sizeof(T))
      return make_error(ErrorCode::kCorrupt, std::string("file ends while reading ") + what);
    T v;
    std::memcpy(&v, base_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  Result<std::string_view> read_string(const char* what) {
    TRY(uint64_t len, read<uint64_t>(what));
    if (len > left())
      return make_error(ErrorCode::kCorrupt, std::string(what) + ": string length " + std::to_string(len) +
                                                 " exceeds the " + std::to_string(left()) + " bytes left");
    std::string_view s(reinterpret_cast<const char*>(base_ + pos_), static_cast<size_t>(len));
    pos_ += len;
    return s;
  }
  Result<const uint8_t*> take(uint64_t n, const char* what) {
    if (n > left()) return make_error(ErrorCode::kCorrupt, std::string(what) + ": needs " + std::to_string(n) + " bytes, " + std::to_string(left()) + " left");
    const uint8_t* p = base_ + pos_;
    pos_ += n;
    return p;
  }

 private:
  const uint8_t* base_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

Result<Value> read_value(Cursor& c, ValueType type, const std::string& key) {
  Value v;
  v.type = type;
  switch (type) {
    case ValueType::kUint8: { TRY(uint8_t x, c.read<uint8_t>(key.c_str())); v.u = x; v.i = x; v.f = x; break; }
    case ValueType::kInt8: { TRY(int8_t x, c.read<int8_t>(key.c_str())); v.i = x; v.f = x; break; }
    case ValueType::kUint16: { TRY(uint16_t x, c.read<uint16_t>(key.c_str())); v.u = x; v.i = x; v.f = x; break; }
    case ValueType::kInt16: { TRY(int16_t x, c.read<int16_t>(key.c_str())); v.i = x; v.f = x; break; }
    case ValueType::kUint32: { TRY(uint32_t x, c.read<uint32_t>(key.c_str())); v.u = x; v.i = x; v.f = x; break; }
    case ValueType::kInt32: { TRY(int32_t x, c.read<int32_t>(key.c_str())); v.i = x; v.f = x; break; }
    case ValueType::kUint64: { TRY(uint64_t x, c.read<uint64_t>(key.c_str())); v.u = x; v.f = static_cast<double>(x); break; }
    case ValueType::kInt64: { TRY(int64_t x, c.read<int64_t>(key.c_str())); v.i = x; v.f = static_cast<double>(x); break; }
    case ValueType::kFloat32: { TRY(float x, c.read<float>(key.c_str())); v.f = x; break; }
    case ValueType::kFloat64: { TRY(double x, c.read<double>(key.c_str())); v.f = x; break; }
    case ValueType::kBool: {
      TRY(uint8_t x, c.read<uint8_t>(key.c_str()));
      if (x > 1) return make_error(ErrorCode::kCorrupt, "key " + key + ": bool value " + std::to_string(x) + " is not 0 or 1");
      v.u = x;
      break;
    }
    case ValueType::kString: { TRY(v.s, c.read_string(key.c_str())); break; }
    case ValueType::kArray: {
      TRY(uint32_t et, c.read<uint32_t>(key.c_str()));
      TRY(uint64_t n, c.read<uint64_t>(key.c_str()));
      v.elem = static_cast<ValueType>(et);
      v.count = n;
      if (v.elem == ValueType::kArray)
        return make_error(ErrorCode::kUnsupported, "key " + key + ": nested arrays are not supported");
      if (v.elem == ValueType::kString) {
        // Each string needs at least its 8-byte length: reject absurd counts before allocating.
        if (n > c.left() / 8)
          return make_error(ErrorCode::kCorrupt, "key " + key + ": array of " + std::to_string(n) + " strings cannot fit in the file");
        v.strings.reserve(static_cast<size_t>(n));
        for (uint64_t k = 0; k < n; ++k) {
          TRY(std::string_view s, c.read_string(key.c_str()));
          v.strings.push_back(s);
        }
      } else {
        const size_t es = scalar_size(v.elem);
        if (es == 0)
          return make_error(ErrorCode::kCorrupt, "key " + key + ": unknown array element type " + std::to_string(et));
        if (n > c.left() / es)
          return make_error(ErrorCode::kCorrupt, "key " + key + ": array of " + std::to_string(n) + " elements exceeds the file");
        TRY(v.data, c.take(n * es, key.c_str()));
      }
      break;
    }
    default:
      return make_error(ErrorCode::kCorrupt, "key " + key + ": unknown value type " + std::to_string(static_cast<uint32_t>(type)));
  }
  return v;
}

bool is_integer(ValueType t) {
  switch (t) {
    case ValueType::kUint8: case ValueType::kInt8: case ValueType::kUint16: case ValueType::kInt16:
    case ValueType::kUint32: case ValueType::kInt32: case ValueType::kUint64: case ValueType::kInt64: return true;
    default: return false;
  }
}
bool is_signed(ValueType t) {
  return t == ValueType::kInt8 || t == ValueType::kInt16 || t == ValueType::kInt32 || t == ValueType::kInt64;
}

}  // namespace

const char* value_type_name(ValueType t) {
  static const char* names[] = {"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
                                "bool", "string", "array", "uint64", "int64", "float64"};
  const auto i = static_cast<uint32_t>(t);
  return i < 13 ? names[i] : "unknown";
}

int64_t TensorInfo::n_elements() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  return n;
}

File::~File() {
  if (map_ != nullptr) munmap(map_, size_);
}

Result<std::unique_ptr<File>> File::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return make_error(err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
                      path + ": cannot open: " + std::strerror(err));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error(ErrorCode::kIo, path + ": not a regular file");
  }
  std::unique_ptr<File> f(new File());
  f->path_ = path;
  f->size_ = static_cast<uint64_t>(st.st_size);
  if (f->size_ == 0) {
    ::close(fd);
    return make_error(ErrorCode::kCorrupt, path + ": empty file, not a GGUF model");
  }
  void* m = mmap(nullptr, f->size_, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (m == MAP_FAILED) return make_error(ErrorCode::kIo, path + ": mmap failed: " + std::strerror(errno));
  f->map_ = m;
  f->base_ = static_cast<const uint8_t*>(m);
  if (auto st2 = f->parse(); !st2.ok()) return st2.error().context(path);
  return f;
}

void File::release(const void* p, uint64_t n) const {
  const auto* b = static_cast<const uint8_t*>(p);
  if (!map_ || b < base_ || n > size_ || static_cast<uint64_t>(b - base_) > size_ - n) return;
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t lo = (reinterpret_cast<uintptr_t>(b) + page - 1) / page * page;
  const uintptr_t hi = (reinterpret_cast<uintptr_t>(b) + n) / page * page;
  // A shared read-only file mapping: MADV_DONTNEED drops the pages, never the data.
  if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
}

Result<std::unique_ptr<File>> File::from_bytes(std::vector<uint8_t> bytes, std::string name) {
  std::unique_ptr<File> f(new File());
  f->path_ = std::move(name);
  f->owned_ = std::move(bytes);
  f->base_ = f->owned_.data();
  f->size_ = f->owned_.size();
  if (auto st = f->parse(); !st.ok()) return st.error().context(f->path_);
  return f;
}

Status File::parse() {
  Cursor c(base_, size_);
  TRY(uint32_t magic, c.read<uint32_t>("magic"));
  if (magic != kMagic) return make_error(ErrorCode::kCorrupt, "not a GGUF file (bad magic)");
  TRY(version_, c.read<uint32_t>("version"));
  if (version_ != 2 && version_ != 3)
    return make_error(ErrorCode::kUnsupported, "GGUF version " + std::to_string(version_) + " is not supported (2 and 3 are)");
  TRY(uint64_t n_tensors, c.read<uint64_t>("tensor count"));
  TRY(uint64_t n_kv, c.read<uint64_t>("metadata count"));
  // A key-value pair needs at least 8 (key length) + 4 (type) + 1 bytes.
  if (n_kv > c.left() / 13) return make_error(ErrorCode::kCorrupt, "metadata count " + std::to_string(n_kv) + " cannot fit in the file");
  for (uint64_t k = 0; k < n_kv; ++k) {
    TRY(std::string_view key_sv, c.read_string("metadata key"));
    std::string key(key_sv);
    TRY(uint32_t type, c.read<uint32_t>(("type of key " + key).c_str()));
    TRY(Value v, read_value(c, static_cast<ValueType>(type), key));
    if (kv_.count(key) != 0) return make_error(ErrorCode::kCorrupt, "duplicate metadata key " + key);
    key_order_.push_back(key);
    kv_.emplace(std::move(key), std::move(v));
  }
  if (const Value* a = find("general.alignment")) {
    if (!is_integer(a->type) || is_signed(a->type))
      return make_error(ErrorCode::kCorrupt, std::string("key general.alignment: expected an unsigned integer, got ") + value_type_name(a->type));
    // The GGUF spec requires a multiple of 8; below 8 the tensor data would be misaligned for
    // the 8-byte loads of the kernels, and 0 would divide by zero below.
    if (a->u < 8 || (a->u & (a->u - 1)) != 0 || a->u > (1u << 20))
      return make_error(ErrorCode::kCorrupt, "key general.alignment: " + std::to_string(a->u) +
                                                 " is not a power of two from 8 to 1 MiB");
    alignment_ = a->u;
  }
  // A tensor entry needs at least 8 (name length) + 4 (n_dims) + 4 (type) + 8 (offset) bytes.
  if (n_tensors > c.left() / 24) return make_error(ErrorCode::kCorrupt, "tensor count " + std::to_string(n_tensors) + " cannot fit in the file");
  tensors_.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t t = 0; t < n_tensors; ++t) {
    TRY(std::string_view name_sv, c.read_string("tensor name"));
    TensorInfo ti;
    ti.name = std::string(name_sv);
    const std::string where = "tensor " + ti.name;
    TRY(uint32_t n_dims, c.read<uint32_t>(where.c_str()));
    if (n_dims == 0 || n_dims > kMaxDims)
      return make_error(ErrorCode::kCorrupt, where + ": " + std::to_string(n_dims) + " dimensions (1 to 4 allowed)");
    int64_t n_el = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      TRY(int64_t ne, c.read<int64_t>(where.c_str()));
      if (ne <= 0) return make_error(ErrorCode::kCorrupt, where + ": dimension " + std::to_string(d) + " is " + std::to_string(ne));
      if (n_el > std::numeric_limits<int64_t>::max() / ne) return make_error(ErrorCode::kCorrupt, where + ": element count overflows");
      n_el *= ne;
      ti.ne.push_back(ne);
    }
    TRY(uint32_t type, c.read<uint32_t>(where.c_str()));
    const kernels::TypeInfo* info = kernels::type_info(type);
    if (info == nullptr || !info->is_weight_type)
      return make_error(ErrorCode::kUnsupported, where + ": tensor type " + std::to_string(type) +
                                                     " is not supported (F32, F16, BF16, Q4_0, Q4_1, Q8_0, Q4_K, Q5_K, Q6_K are)");
    ti.type = static_cast<kernels::DType>(type);
    if (ti.ne[0] % info->block_size != 0)
      return make_error(ErrorCode::kCorrupt, where + ": row length " + std::to_string(ti.ne[0]) + " is not a multiple of the " + info->name + " block size");
    TRY(ti.offset, c.read<uint64_t>(where.c_str()));
    if (ti.offset % alignment_ != 0) return make_error(ErrorCode::kCorrupt, where + ": data offset " + std::to_string(ti.offset) + " is not aligned");
    const uint64_t blocks = static_cast<uint64_t>(n_el / info->block_size);
    if (blocks > std::numeric_limits<uint64_t>::max() / info->block_bytes) return make_error(ErrorCode::kCorrupt, where + ": size overflows");
    ti.nbytes = blocks * info->block_bytes;
    if (tensor_index_.count(ti.name) != 0) return make_error(ErrorCode::kCorrupt, "duplicate tensor " + ti.name);
    tensor_index_.emplace(ti.name, tensors_.size());
    tensors_.push_back(std::move(ti));
  }
  const uint64_t data_start = (c.pos() + alignment_ - 1) / alignment_ * alignment_;
  if (data_start > size_ && !tensors_.empty()) return make_error(ErrorCode::kCorrupt, "file ends before the tensor data");
  for (TensorInfo& ti : tensors_) {
    const uint64_t avail = size_ > data_start ? size_ - data_start : 0;
    if (ti.offset > avail || ti.nbytes > avail - ti.offset)
      return make_error(ErrorCode::kCorrupt, "tensor " + ti.name + ": data (offset " + std::to_string(ti.offset) + ", " +
                                                 std::to_string(ti.nbytes) + " bytes) runs past the end of the file (truncated?)");
    ti.data = base_ + data_start + ti.offset;
  }
  return {};
}

const Value* File::find(std::string_view key) const {
  auto it = kv_.find(std::string(key));
  return it == kv_.end() ? nullptr : &it->second;
}

const TensorInfo* File::tensor(std::string_view name) const {
  auto it = tensor_index_.find(std::string(name));
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {
Error missing(std::string_view key) { return make_error(ErrorCode::kCorrupt, "missing key " + std::string(key)); }
Error wrong(std::string_view key, const char* want, ValueType got) {
  return make_error(ErrorCode::kCorrupt, "key " + std::string(key) + ": expected " + want + ", got " + value_type_name(got));
}
}  // namespace

Result<uint64_t> File::get_uint(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return missing(key);
  if (!is_integer(v->type)) return wrong(key, "an integer", v->type);
  if (is_signed(v->type)) {
    if (v->i < 0) return make_error(ErrorCode::kCorrupt, "key " + std::string(key) + ": negative value " + std::to_string(v->i));
    return static_cast<uint64_t>(v->i);
  }
  return v->u;
}
Result<double> File::get_float(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return missing(key);
  if (v->type != ValueType::kFloat32 && v->type != ValueType::kFloat64 && !is_integer(v->type)) return wrong(key, "a number", v->type);
  return v->f;
}
Result<std::string_view> File::get_string(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return missing(key);
  if (v->type != ValueType::kString) return wrong(key, "a string", v->type);
  return v->s;
}
Result<bool> File::get_bool(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return missing(key);
  if (v->type != ValueType::kBool) return wrong(key, "a bool", v->type);
  return v->u != 0;
}
Result<const Value*> File::get_array(std::string_view key, ValueType elem) const {
  const Value* v = find(key);
  if (v == nullptr) return missing(key);
  if (v->type != ValueType::kArray) return wrong(key, "an array", v->type);
  if (v->elem != elem)
    return make_error(ErrorCode::kCorrupt, "key " + std::string(key) + ": expected an array of " + value_type_name(elem) + ", got one of " + value_type_name(v->elem));
  return v;
}
Result<uint64_t> File::get_uint_or(std::string_view key, uint64_t def) const {
  return find(key) == nullptr ? Result<uint64_t>(def) : get_uint(key);
}
Result<double> File::get_float_or(std::string_view key, double def) const {
  return find(key) == nullptr ? Result<double>(def) : get_float(key);
}
Result<std::string_view> File::get_string_or(std::string_view key, std::string_view def) const {
  return find(key) == nullptr ? Result<std::string_view>(def) : get_string(key);
}
Result<bool> File::get_bool_or(std::string_view key, bool def) const {
  return find(key) == nullptr ? Result<bool>(def) : get_bool(key);
}

}  // namespace docdsa::gguf
