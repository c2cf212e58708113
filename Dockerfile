# syntax=docker/dockerfile:1
# Static, non-root frontgate image. `make image` builds it; `make build` uses
# the same Go build flags.
# The Go version of the Makefile's GOTOOLCHAIN.
FROM golang:1.27.3 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY auth/ auth/
COPY proxy/ proxy/
COPY cmd/ cmd/
ARG VERSION=dev
ARG COMMIT=unknown
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" -o /out/frontgate ./cmd/frontgate

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/frontgate /frontgate
USER 65532:65532
EXPOSE 8443 8081
ENTRYPOINT ["/frontgate"]
