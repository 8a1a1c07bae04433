"""``flexrestore``: the operator's command for the deployed service (start, follow and list restores).

It finds the stack by name, reads its ``ApiUrl`` output and signs every request with the caller's AWS
credentials (SigV4, service ``execute-api``). Deployed-side code only: it never imports local mode or the
Atlas simulator.
"""
