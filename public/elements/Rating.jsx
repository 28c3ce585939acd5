// The 1-5 rating under each answer: naturalness, correctness, helpfulness, and the answer the bot
// should have given. "Saved" appears only once the server has committed the rating (the `rate`
// action replies after the commit); a failure says so and keeps the choices for another try.
import { useState } from 'react';

const FIELDS = [
  ['naturalness', 'Natural'],
  ['correctness', 'Correct'],
  ['helpfulness', 'Helpful'],
];

export default function Rating() {
  const saved = props.saved || {};
  const [scores, setScores] = useState({
    naturalness: saved.naturalness || null,
    correctness: saved.correctness || null,
    helpfulness: saved.helpfulness || null,
  });
  const [correction, setCorrection] = useState(saved.correction || '');
  const [showCorrection, setShowCorrection] = useState(Boolean(saved.correction));
  const [status, setStatus] = useState(saved.naturalness || saved.correctness || saved.helpfulness ? 'saved' : 'idle');
  const [error, setError] = useState('');

  const pick = (field, value) => {
    setScores({ ...scores, [field]: value });
    setStatus('dirty');
  };

  const submit = async () => {
    setStatus('saving');
    setError('');
    const payload = { message_id: props.messageId, elementId: props.elementId, forId: props.forId, ...scores };
    if (correction.trim()) payload.correction = correction.trim();
    try {
      const reply = await callAction({ name: 'rate', payload });
      const result = reply && reply.response;
      if (result && result.saved) {
        setStatus('saved');
      } else {
        setStatus('failed');
        setError((result && result.error) || 'not saved');
      }
    } catch (e) {
      setStatus('failed');
      setError(String(e));
    }
  };

  const rated = Object.values(scores).some(Boolean) || correction.trim();
  return (
    <div className="flex flex-col gap-2 rounded-md border p-3 text-sm" data-rating-for={props.messageId}>
      {FIELDS.map(([field, label]) => (
        <div key={field} className="flex items-center gap-2" role="radiogroup" aria-label={field}>
          <span className="w-20 text-muted-foreground">{label}</span>
          {[1, 2, 3, 4, 5].map((value) => (
            <button
              key={value}
              type="button"
              role="radio"
              aria-checked={scores[field] === value}
              aria-label={`${field} ${value}`}
              onClick={() => pick(field, value)}
              className={
                'h-7 w-7 rounded-md border ' +
                (scores[field] === value ? 'bg-primary text-primary-foreground' : 'hover:bg-accent')
              }
            >
              {value}
            </button>
          ))}
        </div>
      ))}
      {showCorrection ? (
        <textarea
          aria-label="better answer"
          placeholder="The answer the bot should have given"
          value={correction}
          onChange={(e) => {
            setCorrection(e.target.value);
            setStatus('dirty');
          }}
          className="min-h-20 rounded-md border bg-background p-2"
        />
      ) : (
        <button type="button" className="self-start text-muted-foreground underline" onClick={() => setShowCorrection(true)}>
          Write a better answer
        </button>
      )}
      <div className="flex items-center gap-3">
        <button
          type="button"
          disabled={!rated || status === 'saving'}
          onClick={submit}
          className="rounded-md bg-primary px-3 py-1 text-primary-foreground disabled:opacity-50"
        >
          Save rating
        </button>
        <span role="status" className="text-muted-foreground">
          {status === 'saving' && 'Saving…'}
          {status === 'saved' && 'Saved'}
          {status === 'failed' && `Not saved: ${error}`}
        </span>
      </div>
    </div>
  );
}
