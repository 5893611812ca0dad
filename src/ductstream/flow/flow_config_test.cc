#include <gtest/gtest.h>

#include "ductstream/flow/flow_config.h"

TEST(FlowConfigPlaceholderTest, Compiles) { SUCCEED(); }
