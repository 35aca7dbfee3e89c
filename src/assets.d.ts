// Files imported `with { type: "file" }`: Bun gives their path (inside the compiled binary,
// a $bunfs path), which Bun.file() reads. TypeScript only needs to know it is a string.
declare module "swagger-ui-dist/swagger-ui-bundle.js" {
  const path: string;
  export default path;
}
declare module "swagger-ui-dist/swagger-ui.css" {
  const path: string;
  export default path;
}
