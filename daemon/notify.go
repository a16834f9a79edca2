package daemon

import (
	"fmt"
	"net"
	"os"
)

// Notify sends state to systemd (sd_notify(3)): "READY=1" once the daemon
// serves, "RELOADING=1" and "STOPPING=1". It does nothing when
// NOTIFY_SOCKET is unset; an abstract socket is written with a leading @.
func Notify(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if path[0] == '@' {
		path = "\x00" + path[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("daemon: sd_notify: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("daemon: sd_notify: %w", err)
	}
	return nil
}
