#pragma once
// The library throws igan::Error (declared in the public header so programs can catch it).
#include "igan/error.h"
