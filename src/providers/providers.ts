/** Chooses the provider adapters from the configuration: real vendors when keyed, the offline ones otherwise. */
import type { Config } from '../config';
import type { Logger } from '../logger';
import type { ImageMaker } from './image.port';
import type { Publisher } from './publisher.port';
import type { TextWriter } from './text.port';
import { createOfflineWriter } from './offline/offline.writer';
import { createSvgImageMaker } from './offline/svg.image';
import { createFilePublisher } from './offline/file.publisher';

/** The three ports the stage actors call. */
export interface Providers {
  writer: TextWriter;
  images: ImageMaker;
  publisher: Publisher;
}

/** Builds the providers for `config`, saying loudly which ones are offline stand-ins. */
export function createProviders(config: Config, log: Logger): Providers {
  if (config.OPENAI_API_KEY || config.REPLICATE_API_TOKEN || config.WIX_APP_ID) {
    log.warn('real provider credentials are set, but this build only has the offline providers: using them');
  }
  log.warn('OPENAI_API_KEY is not set: articles are written by the local offline writer');
  log.warn('REPLICATE_API_TOKEN is not set: header images are rendered locally as SVG');
  log.warn({ dir: `${config.dataDir}/published` }, 'WIX_APP_ID is not set: posts are written as HTML files');
  return {
    writer: createOfflineWriter(),
    images: createSvgImageMaker({ dataDir: config.dataDir }),
    publisher: createFilePublisher({ dataDir: config.dataDir }),
  };
}
