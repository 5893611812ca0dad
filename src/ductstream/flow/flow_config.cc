#include "ductstream/flow/flow_config.h"
