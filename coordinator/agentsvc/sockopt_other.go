//go:build !linux

package agentsvc

import (
	"net"
	"time"
)

func setUserTimeout(net.Conn, time.Duration) {}
