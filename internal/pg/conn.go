package pg

import (
	"database/sql/driver"
	"errors"
	"net"
	"syscall"
)

// isConnectionError reports errors that mean "the server is not there"
// rather than "the query is wrong".
func isConnectionError(err error) bool {
	var netErr net.Error
	return errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.As(err, &netErr)
}
