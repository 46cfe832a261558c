package p2p

import (
	"testing"

	"github.com/libp2p/go-libp2p"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/stretchr/testify/assert"
)

// TestServiceLimitsMatchLibp2p: setDefaultServiceLimits is a copy of libp2p.SetDefaultServiceLimits
// (whose package production code must not import, see newLibp2pHost); this pins the copy to the
// go-libp2p in go.mod, so an upgrade that changes libp2p's values fails here.
func TestServiceLimitsMatchLibp2p(t *testing.T) {
	var want, got rcmgr.ScalingLimitConfig
	libp2p.SetDefaultServiceLimits(&want)
	setDefaultServiceLimits(&got)
	assert.Equal(t, want, got)
}
