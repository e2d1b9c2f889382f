# Security tests: service token, credentials, authorization matrix, fuzzer.
.PHONY: test-security

test-security:  ## the security tests on a real mesh, then `N passed, N failed` and the report
	scripts/test-security.sh
