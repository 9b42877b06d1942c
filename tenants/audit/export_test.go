package audit

// SetVerifyPage makes Verify read n entries per transaction until the
// returned function restores the default.
func SetVerifyPage(n int) (restore func()) {
	old := verifyPage
	verifyPage = n
	return func() { verifyPage = old }
}
