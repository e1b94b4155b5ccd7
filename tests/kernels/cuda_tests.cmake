# CUDA op tests (DOCDSA_CUDA=ON, or the standalone kernels/cuda project), label gpu: each op
# against the CPU reference kernels. Without a GPU or driver every test reports SKIPPED
# (GTEST_SKIP; gtest_discover_tests maps it to a CTest skip), never passed.
# scripts/gpu_check.sh runs them on a machine with a GPU.
add_executable(cuda_tests
  ${CMAKE_CURRENT_LIST_DIR}/cuda_matmul_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cuda_ops_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cuda_dsa_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cuda_attention_test.cpp
)
target_link_libraries(cuda_tests PRIVATE kernels_cuda GTest::gtest_main)
target_include_directories(cuda_tests PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../helpers)  # random_fill.h
gtest_discover_tests(cuda_tests TEST_PREFIX cuda. PROPERTIES LABELS gpu TIMEOUT 300 DISCOVERY_TIMEOUT 60)

# The device code's host-compilable parts (dequantisers), built by the C++ compiler and checked
# on every machine: label unit.
add_executable(cuda_host_tests ${CMAKE_CURRENT_LIST_DIR}/cuda_host_test.cpp)
target_link_libraries(cuda_host_tests PRIVATE kernels_cuda GTest::gtest_main)
gtest_discover_tests(cuda_host_tests TEST_PREFIX cuda. PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)

# The engine's CUDA backend against the CPU backend (label gpu; skipped without a GPU). Only in
# the whole project (it needs the engine), not in the standalone kernels/cuda build.
if(TARGET engine_cuda)
  add_executable(cuda_backend_tests ${CMAKE_CURRENT_LIST_DIR}/../engine/backend_cuda_test.cpp)
  target_link_libraries(cuda_backend_tests PRIVATE engine_cuda test_helpers GTest::gtest_main)
  gtest_discover_tests(cuda_backend_tests TEST_PREFIX cuda. PROPERTIES LABELS gpu TIMEOUT 300 DISCOVERY_TIMEOUT 60)
  # Its refusals (no driver: a message naming --device cuda; unsupported shapes): label unit.
  add_executable(cuda_backend_unit_tests ${CMAKE_CURRENT_LIST_DIR}/../engine/backend_cuda_error_test.cpp)
  target_link_libraries(cuda_backend_unit_tests PRIVATE engine_cuda GTest::gtest_main)
  gtest_discover_tests(cuda_backend_unit_tests TEST_PREFIX cuda. PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)
endif()
