"""Schemathesis hooks for infra/api-fuzz.sh.

The local runner accepts `http:` callback URLs on any host and its notifier
POSTs every status change there, so a generated `callback_url` would send
requests to whatever hosts the generator made up. Before each call, any
`callback_url` an http(s) URL parser could read is pointed at a closed port
on loopback instead; other values (refused as not a URL, or for their
scheme) go as generated.
"""

import schemathesis

SINK = "http://127.0.0.1:9/callback"
# What a WHATWG URL parser ignores: tab and newline anywhere, C0 controls
# and spaces around the URL.
_IGNORED_ANYWHERE = dict.fromkeys(map(ord, "\t\n\r"))
_C0_AND_SPACE = "".join(chr(c) for c in range(0x21))


def _may_be_http(value: str) -> bool:
    cleaned = value.translate(_IGNORED_ANYWHERE).strip(_C0_AND_SPACE).lower()
    return cleaned.startswith(("http:", "https:"))


@schemathesis.hook
def before_call(context, case, kwargs):
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("callback_url"), str):
        if _may_be_http(body["callback_url"]):
            body["callback_url"] = SINK
