// Declarative config for the local gateway: the video service behind the routes and key-auth of
// kong/kong.yml (API and /ws need a key; the page is public).
export const VIDEO_TEST_KEY = "video-test-key";

export function videoGatewayYaml(servicePort: number): string {
  return `_format_version: "3.0"
consumers:
  - username: video-client
    keyauth_credentials:
      - key: ${VIDEO_TEST_KEY}
services:
  - name: video-service
    url: http://127.0.0.1:${servicePort}
    routes:
      - name: video-api
        paths: ["/api/v1/video"]
        strip_path: false
        plugins:
          - name: key-auth
            config:
              key_names: [apikey]
              hide_credentials: true
      - name: video-ws
        paths: ["/ws"]
        strip_path: false
        plugins:
          - name: key-auth
            config:
              key_names: [apikey]
              hide_credentials: true
      # No \`methods\` here: Kong ranks a route with methods + paths above paths-only routes, so
      # methods on "/" would take GET /ws and GET /api/v1/video/... away from key-auth.
      - name: video-page
        paths: ["/"]
        strip_path: false
`;
}
