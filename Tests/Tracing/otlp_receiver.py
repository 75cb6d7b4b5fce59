#!/usr/bin/env python3
"""An OTLP/HTTP traces receiver on loopback, for the tracing tests.

It decodes what an exporter posts to /v1/traces with the OpenTelemetry project's own
protobuf definitions (opentelemetry-proto: http/protobuf, and http/json through
protobuf's JSON mapping), answers as a collector does, and writes one JSON line per span
to --out: trace and span ids in hex, the parent's, name, kind, service name, attributes.

Prints "listening PORT" on its first line of standard output, then serves until killed.
"""
import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

LOCK = threading.Lock()


def value(any_value):
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


def spans(request):
    for resource_spans in request.resource_spans:
        resource = {a.key: value(a.value) for a in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield {
                    "trace_id": span.trace_id.hex(),
                    "span_id": span.span_id.hex(),
                    "parent_span_id": span.parent_span_id.hex(),
                    "name": span.name,
                    "kind": span.kind,
                    "service": resource.get("service.name"),
                    "status": span.status.code,
                    "start": span.start_time_unix_nano,
                    "end": span.end_time_unix_nano,
                    "attributes": {a.key: value(a.value) for a in span.attributes},
                }


class Handler(BaseHTTPRequestHandler):
    out = None

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path != "/v1/traces":
            self.send_error(404)
            return
        request = trace_service_pb2.ExportTraceServiceRequest()
        content_type = self.headers.get("Content-Type", "")
        try:
            if content_type.startswith("application/json"):
                json_format.Parse(body, request)
            else:
                request.ParseFromString(body)
        except Exception as error:  # a malformed export is the exporter's bug: say so
            self.send_error(400, str(error))
            return
        with LOCK, open(self.out, "a") as f:
            for span in spans(request):
                f.write(json.dumps(span) + "\n")
        answer = trace_service_pb2.ExportTraceServiceResponse()
        if content_type.startswith("application/json"):
            payload, reply_type = json_format.MessageToJson(answer).encode(), "application/json"
        else:
            payload, reply_type = answer.SerializeToString(), "application/x-protobuf"
        self.send_response(200)
        self.send_header("Content-Type", reply_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    Handler.out = args.out
    open(args.out, "w").close()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"listening {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
