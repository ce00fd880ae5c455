"""The hostile-input suite: generated input an attacker or a careless operator could send.

``strategies.py`` holds the hypothesis strategies every entry point's tests share (hostile
text, integers, numbers written as text, deeply nested JSON and TOML, HTTP header values,
tokens and signatures). The tests state one property per entry point instead of listing
examples: over HTTP, every answer is a 2xx or a 4xx RFC 9457 problem with a
machine-readable ``reason`` (503 only for a real outage), the server stays up, and a
refusal leaves storage as it was; on the command line, a refusal is a non-zero exit with
one line on stderr and no traceback.
"""
