#include "trace/trace-hw_appdep.h"
