"""The web pages' shared machinery: translations, rendering, security headers, CSRF and staff sign-in checks."""
