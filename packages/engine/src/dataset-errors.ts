/**
 * One error for "the data is wrong", shared by the pipelines' dataset openers: every problem found
 * while a split was opened (before the first training step), each naming the file, the record and
 * the field, listed together so that a user fixes them in one pass instead of one per run.
 */

/** How many problems an error message lists before `... and N more` (all are in `problems`). */
export const MAX_LISTED_PROBLEMS = 30;

/** Every problem found while opening a split, one line each. */
export class DatasetProblemsError extends Error {
  /** The split or file that was opened. */
  readonly source: string;
  /** All problems, one line each. */
  readonly problems: string[];

  /**
   * @param source the split or file that was opened (the message's first words)
   * @param problems one line per problem
   * @param what what the header says the problems are, e.g. `in the annotations, found when the split was opened`
   */
  constructor(source: string, problems: string[], what = 'found when the split was opened') {
    const listed = problems.slice(0, MAX_LISTED_PROBLEMS).map((p) => `  - ${p}`);
    if (problems.length > MAX_LISTED_PROBLEMS) listed.push(`  ... and ${problems.length - MAX_LISTED_PROBLEMS} more`);
    super(`${source}: ${problems.length} problem(s) ${what}:\n${listed.join('\n')}`);
    this.name = 'DatasetProblemsError';
    this.source = source;
    this.problems = problems;
  }
}
