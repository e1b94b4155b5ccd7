// Shared by the CUDA op tests: a fixture that skips (never passes) without a GPU or driver,
// and host <-> device copies of std::vector.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "docdsa/kernels/cuda.h"

namespace docdsa::kernels::cuda::testing {

class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (device_count(&why) == 0) GTEST_SKIP() << why;
    ctx_ = Context::create(nullptr, &why);
    ASSERT_TRUE(ctx_) << why;
  }
  Context& ctx() { return *ctx_; }
  std::unique_ptr<Context> ctx_;
};

template <typename T>
DeviceArray<T> upload(const std::vector<T>& v) {
  DeviceArray<T> d(v.data(), v.size());
  EXPECT_TRUE(d.ok());
  return d;
}

template <typename T>
std::vector<T> download(const DeviceArray<T>& d) {
  std::vector<T> v(d.size());
  EXPECT_EQ(d.download(v.data(), v.size()), 0) << "device copy failed";
  return v;
}

#define ASSERT_CUDA_OK(expr)                                               \
  do {                                                                     \
    const int docdsa_rc_ = (expr);                                         \
    ASSERT_EQ(docdsa_rc_, 0) << #expr << ": " << error_string(docdsa_rc_); \
    ASSERT_EQ(synchronize(), 0);                                           \
  } while (0)

}  // namespace docdsa::kernels::cuda::testing
