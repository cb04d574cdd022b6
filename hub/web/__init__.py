"""The pages' shared machinery (rendering, security headers, CSRF, sign-in checks) and the sign-in and admin pages."""
