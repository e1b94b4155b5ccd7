// Force-included first in every kernels source (kernels/CMakeLists.txt), so this is where
// <immintrin.h> is first read. GCC 12's AVX-512 intrinsics start from _mm512_undefined_*() (a
// self-initialised variable); once inlined into our loops -Wmaybe-uninitialized reports each use
// (GCC bug 105593, fixed in GCC 13): thousands of false positives that would bury real warnings.
// The two warnings are silenced for the intrinsic headers only; our own code still gets them.
#pragma once

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#else
#include <immintrin.h>
#endif
