"""Rerankers and what surrounds them (candidates, explanations): the `rerank/` room.

`instructrec.rerank.joint`: a joint reader that reads the request and all candidates in one
MiniLM pass and scores each candidate from its own span (issue 15, "joint reading").
"""
