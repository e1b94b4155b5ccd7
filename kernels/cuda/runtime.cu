// Device discovery, memory, and the per-stream Context (cuBLAS handle, scratch buffers).
#include <cublas_v2.h>

#include <vector>

#include "common.cuh"

namespace docdsa::kernels::cuda {

int device_count(std::string* why) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    if (why) *why = std::string("no usable CUDA device: ") + cudaGetErrorString(e);
    cudaGetLastError();  // clear the sticky "no driver" state for later calls
    return 0;
  }
  if (n == 0 && why) *why = "no CUDA device found";
  return n;
}

std::string device_name() {
  cudaDeviceProp p{};
  if (device_count() == 0 || cudaGetDeviceProperties(&p, 0) != cudaSuccess) return {};
  return p.name;
}

size_t device_memory_bytes() {
  cudaDeviceProp p{};
  if (device_count() == 0 || cudaGetDeviceProperties(&p, 0) != cudaSuccess) return 0;
  return p.totalGlobalMem;
}

size_t device_free_bytes() {
  size_t free = 0, total = 0;
  if (device_count() == 0 || cudaMemGetInfo(&free, &total) != cudaSuccess) return 0;
  return free;
}

const char* error_string(int code) {
  return cudaGetErrorString(static_cast<cudaError_t>(code));
}

void* device_alloc(size_t bytes) {
  if (bytes == 0) return nullptr;
  void* p = nullptr;
  if (cudaMalloc(&p, bytes) != cudaSuccess) {
    cudaGetLastError();
    return nullptr;
  }
  return p;
}
void device_free(void* p) {
  if (p) cudaFree(p);
}
int copy_to_device(void* dst, const void* src, size_t bytes, Stream s) {
  return static_cast<int>(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s));
}
int copy_to_host(void* dst, const void* src, size_t bytes, Stream s) {
  const cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s);
  return static_cast<int>(e != cudaSuccess ? e : cudaStreamSynchronize(s));
}
int memset_device(void* dst, int value, size_t bytes, Stream s) {
  return static_cast<int>(cudaMemsetAsync(dst, value, bytes, s));
}
int synchronize(Stream s) {
  return static_cast<int>(cudaStreamSynchronize(s));
}

struct Context::Impl {
  Stream stream = nullptr;
  cublasHandle_t blas = nullptr;
  int sms = 0;
  std::vector<std::pair<void*, size_t>> slots;
};

std::unique_ptr<Context> Context::create(Stream s, std::string* why) {
  if (device_count(why) == 0) return nullptr;
  auto* impl = new Impl;
  impl->stream = s;
  int dev = 0;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&impl->sms, cudaDevAttrMultiProcessorCount, dev);
  if (cublasCreate(&impl->blas) != CUBLAS_STATUS_SUCCESS) {
    if (why) *why = "cuBLAS could not be initialised";
    delete impl;
    return nullptr;
  }
  cublasSetStream(impl->blas, s);
  return std::unique_ptr<Context>(new Context(impl));
}

Context::~Context() {
  for (auto& [p, n] : impl_->slots) device_free(p);
  if (impl_->blas) cublasDestroy(impl_->blas);
  delete impl_;
}

Stream Context::stream() const {
  return impl_->stream;
}
void* Context::blas() const {
  return impl_->blas;
}
int Context::sm_count() const {
  return impl_->sms;
}

void* Context::scratch(int slot, size_t bytes) {
  if (impl_->slots.size() <= static_cast<size_t>(slot)) impl_->slots.resize(static_cast<size_t>(slot) + 1, {nullptr, 0});
  auto& [p, n] = impl_->slots[static_cast<size_t>(slot)];
  if (n < bytes) {
    // Work queued on the stream may still read the old buffer.
    cudaStreamSynchronize(impl_->stream);
    device_free(p);
    n = bytes + bytes / 4;
    p = device_alloc(n);
    if (!p) n = 0;
  }
  return p;
}

}  // namespace docdsa::kernels::cuda
