// The end-of-conversation survey: was the issue resolved (yes/no), how satisfied (1-5), and a comment.
// "Thank you" appears only once the server has committed the answers (the `survey` action replies
// after the commit); a failure says so and keeps the choices for another try.
import { useState } from 'react';

export default function Survey() {
  const saved = props.saved || {};
  const [resolved, setResolved] = useState(saved.resolved === undefined ? null : saved.resolved);
  const [csat, setCsat] = useState(saved.csat || null);
  const [comment, setComment] = useState(saved.comment || '');
  const [status, setStatus] = useState(saved.resolved !== undefined || saved.csat ? 'saved' : 'idle');
  const [error, setError] = useState('');

  const submit = async () => {
    setStatus('saving');
    setError('');
    const payload = { elementId: props.elementId, forId: props.forId, resolved, csat };
    if (comment.trim()) payload.comment = comment.trim();
    try {
      const reply = await callAction({ name: 'survey', payload });
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

  const choice = (selected) =>
    'rounded-md border px-3 py-1 ' + (selected ? 'bg-primary text-primary-foreground' : 'hover:bg-accent');
  return (
    <div className="flex flex-col gap-2 rounded-md border p-3 text-sm" data-survey>
      <div className="flex items-center gap-2" role="radiogroup" aria-label="resolved">
        <span className="w-44 text-muted-foreground">Was your issue resolved?</span>
        {[[true, 'Yes'], [false, 'No']].map(([value, label]) => (
          <button
            key={label}
            type="button"
            role="radio"
            aria-checked={resolved === value}
            aria-label={`resolved ${label.toLowerCase()}`}
            onClick={() => { setResolved(value); setStatus('dirty'); }}
            className={choice(resolved === value)}
          >
            {label}
          </button>
        ))}
      </div>
      <div className="flex items-center gap-2" role="radiogroup" aria-label="satisfaction">
        <span className="w-44 text-muted-foreground">How satisfied are you?</span>
        {[1, 2, 3, 4, 5].map((value) => (
          <button
            key={value}
            type="button"
            role="radio"
            aria-checked={csat === value}
            aria-label={`satisfaction ${value}`}
            onClick={() => { setCsat(value); setStatus('dirty'); }}
            className={'h-7 w-7 rounded-md border ' + (csat === value ? 'bg-primary text-primary-foreground' : 'hover:bg-accent')}
          >
            {value}
          </button>
        ))}
      </div>
      <textarea
        aria-label="survey comment"
        placeholder="Anything else you want to tell us? (optional)"
        value={comment}
        onChange={(e) => { setComment(e.target.value); setStatus('dirty'); }}
        className="min-h-16 rounded-md border bg-background p-2"
      />
      <div className="flex items-center gap-3">
        <button
          type="button"
          disabled={(resolved === null && !csat) || status === 'saving'}
          onClick={submit}
          className="rounded-md bg-primary px-3 py-1 text-primary-foreground disabled:opacity-50"
        >
          Send
        </button>
        <span role="status" className="text-muted-foreground">
          {status === 'saving' && 'Sending…'}
          {status === 'saved' && 'Thank you!'}
          {status === 'failed' && `Not sent: ${error}`}
        </span>
      </div>
    </div>
  );
}
