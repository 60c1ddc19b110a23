// One settings form: the value as loaded, the value being edited, and a
// save that sends only what changed (a JSON merge patch).
import { ApiError } from '../../lib/api';
import { mergePatch } from './admin';

export class SettingsForm<T extends object> {
  value = $state<T | null>(null);
  before: T | null = null;
  loadError = $state<unknown>(null);
  error = $state<unknown>(null);
  fields = $state<Record<string, string>>({});
  note = $state('');
  busy = $state(false);

  constructor(
    private readonly get: () => Promise<T>,
    private readonly patch: (p: Partial<T>) => Promise<T>,
  ) {}

  private show(v: T) {
    this.before = structuredClone(v);
    this.value = structuredClone(v);
  }

  async load() {
    try {
      this.show(await this.get());
      this.loadError = null;
    } catch (e) {
      this.loadError = e;
    }
  }

  /** save sends the fields that changed, plus extra (a write-only secret). */
  async save(extra: Partial<T> = {}) {
    if (!this.value || !this.before) return;
    this.note = '';
    this.error = null;
    this.fields = {};
    const p = { ...mergePatch(this.before, $state.snapshot(this.value) as T), ...extra };
    if (Object.keys(p).length === 0) {
      this.note = 'Nothing changed.';
      return;
    }
    this.busy = true;
    try {
      this.show(await this.patch(p));
      this.note = 'Saved.';
    } catch (e) {
      this.error = e;
      if (e instanceof ApiError) this.fields = e.fields;
    } finally {
      this.busy = false;
    }
  }

  /** generalError is the error when it names no field (shown as an alert). */
  get generalError(): unknown {
    return Object.keys(this.fields).length ? null : this.error;
  }
}
