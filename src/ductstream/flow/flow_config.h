#pragma once
// Placeholder: the flow definition model arrives in this change.
