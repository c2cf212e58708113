package cluster

import _ "embed"

// kwokStages are the stages kwok plays (it runs nothing without stages in
// its configuration); see the file's header.
//
//go:embed kwok-stages.yaml
var kwokStages string
