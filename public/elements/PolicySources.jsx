// The policy sections an answer was given, under the answer: titles, each opening to its text, so an
// agent can check a deadline or a fee against the policy itself.
export default function PolicySources() {
  const sources = props.sources || [];
  if (!sources.length) {
    return (
      <div className="text-xs text-muted-foreground" data-policy-sources="none">
        No policy section matched this question.
      </div>
    );
  }
  return (
    <div className="flex flex-col gap-1 text-xs text-muted-foreground" data-policy-sources>
      <span>Policy used:</span>
      {sources.map((source, index) => (
        <details key={index} className="rounded-md border px-2 py-1">
          <summary className="cursor-pointer">
            § {source.section} <span className="opacity-60">({source.source}, match {source.score.toFixed(2)})</span>
          </summary>
          <div className="whitespace-pre-wrap pt-1">{source.text}</div>
        </details>
      ))}
    </div>
  );
}
