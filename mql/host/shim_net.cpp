#define TB_SHIM_IMPLEMENTATION
#include "mql_shim.h"
