// Stylesheets imported for the bundler: Bun puts them in the page's CSS file.
declare module "*.css";
