"""Local stand-ins for the services flows call: an HTTP server that records requests, and a
server implementing the Lambda Invoke API that boto3 reaches over HTTP."""
