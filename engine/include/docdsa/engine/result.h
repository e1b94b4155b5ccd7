// Result<T>, Status and TRY live in the base library (base/include/docdsa/base/result.h),
// shared by every module; this name is kept for the engine's users.
#pragma once

#include "docdsa/base/result.h"
