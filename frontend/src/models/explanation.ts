// The explanation documents of assay.engine.explanations, read defensively: the API
// types them as plain objects.

export interface FeatureContribution {
  feature: string;
  value: number;
  contribution: number;
}
export interface FeatureExplanation {
  kind: 'features';
  space: string | null;
  bias: number | null;
  contributions: FeatureContribution[] | null;
  note: string | null;
}
export interface FiredRule {
  rule: string;
  points: number;
  description: string | null;
  capped: boolean;
}
export interface RulesExplanation {
  kind: 'rules';
  combination: string;
  total_points: number;
  min_points: number | null;
  max_points: number | null;
  fired: FiredRule[];
}
export interface ComponentScore {
  name: string;
  score: number;
  effective_score: number;
  weight: number;
  contribution: number;
  explanation: Explanation | null;
}
export interface EnsembleExplanation {
  kind: 'ensemble';
  uncapped_score: number;
  ceiling: string | null;
  components: ComponentScore[];
}
export type Explanation = FeatureExplanation | RulesExplanation | EnsembleExplanation;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v ?? 0));
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

export function readExplanation(raw: unknown): Explanation | null {
  if (!isObject(raw)) return null;
  switch (raw.kind) {
    case 'features':
      return {
        kind: 'features',
        space: str(raw.space),
        bias: typeof raw.bias === 'number' ? raw.bias : null,
        note: str(raw.note),
        contributions: Array.isArray(raw.contributions)
          ? raw.contributions.filter(isObject).map((c) => ({
              feature: String(c.feature),
              value: num(c.value),
              contribution: num(c.contribution),
            }))
          : null,
      };
    case 'rules':
      return {
        kind: 'rules',
        combination: String(raw.combination ?? ''),
        total_points: num(raw.total_points),
        min_points: typeof raw.min_points === 'number' ? raw.min_points : null,
        max_points: typeof raw.max_points === 'number' ? raw.max_points : null,
        fired: Array.isArray(raw.fired)
          ? raw.fired.filter(isObject).map((r) => ({
              rule: String(r.rule),
              points: num(r.points),
              description: str(r.description),
              capped: r.capped === true,
            }))
          : [],
      };
    case 'ensemble':
      return {
        kind: 'ensemble',
        uncapped_score: num(raw.uncapped_score),
        ceiling: str(raw.ceiling),
        components: Array.isArray(raw.components)
          ? raw.components.filter(isObject).map((c) => ({
              name: String(c.name),
              score: num(c.score),
              effective_score: num(c.effective_score),
              weight: num(c.weight),
              contribution: num(c.contribution),
              explanation: readExplanation(c.explanation),
            }))
          : [],
      };
    default:
      return null;
  }
}
