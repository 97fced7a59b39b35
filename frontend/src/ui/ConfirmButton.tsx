// A button that asks first: a native <dialog> opened with showModal() (focus moves into
// it and stays there, Escape closes it, the page behind is inert). No react-aria Modal:
// it injects a <style> element the console's CSP refuses.
import { useId, useRef, useState } from 'react';

export interface ConfirmButtonProps {
  /** The visible text of the button that opens the dialog. */
  label: string;
  /** Added after the label in the accessible name (which key, which member). */
  nameSuffix?: string;
  title: string;
  body: string;
  confirmLabel: string;
  backLabel: string;
  onConfirm: () => Promise<unknown> | void;
  disabled?: boolean;
  className?: string;
}

export function ConfirmButton({
  label,
  nameSuffix,
  title,
  body,
  confirmLabel,
  backLabel,
  onConfirm,
  disabled,
  className = 'button button-secondary',
}: ConfirmButtonProps) {
  const dialog = useRef<HTMLDialogElement>(null);
  const opener = useRef<HTMLButtonElement>(null);
  const back = useRef<HTMLButtonElement>(null);
  const [busy, setBusy] = useState(false);
  const titleId = useId();
  const bodyId = useId();

  const close = () => {
    dialog.current?.close();
  };

  return (
    <>
      <button
        ref={opener}
        type="button"
        className={className}
        disabled={disabled}
        // The visible text starts the name (WCAG 2.5.3); the suffix tells rows apart.
        aria-label={nameSuffix ? `${label} ${nameSuffix}` : undefined}
        onClick={() => {
          dialog.current?.showModal();
          // The safe choice first: Enter on the dialog does not destroy anything.
          back.current?.focus();
        }}
      >
        {label}
      </button>
      <dialog
        ref={dialog}
        className="confirm-dialog"
        aria-labelledby={titleId}
        aria-describedby={bodyId}
        onClose={() => opener.current?.focus()}
      >
        <h2 id={titleId}>{title}</h2>
        <p id={bodyId}>{body}</p>
        <div className="actions">
          <button
            type="button"
            className="button"
            disabled={busy}
            onClick={async () => {
              setBusy(true);
              try {
                await onConfirm();
              } finally {
                setBusy(false);
                close();
              }
            }}
          >
            {confirmLabel}
          </button>
          <button ref={back} type="button" className="button button-secondary" onClick={close}>
            {backLabel}
          </button>
        </div>
      </dialog>
    </>
  );
}
