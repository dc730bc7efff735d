/* rule files are embedded into the binary as text (import ... with { type: "text" }) */
declare module "*.rule" {
  const text: string;
  export default text;
}
